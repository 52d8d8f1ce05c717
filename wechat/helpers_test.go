package wechat_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/wechat"
)

// seenRequest is what the test server recorded of one request.
type seenRequest struct {
	Method      string
	Path        string
	Query       url.Values
	ContentType string
	Body        string
}

// apiServer is an httptest server that answers with canned bodies in
// order (the last one repeats) and records every request.
type apiServer struct {
	*httptest.Server

	mu      sync.Mutex
	answers []string
	seen    []seenRequest
}

func newAPIServer(t *testing.T, answers ...string) *apiServer {
	t.Helper()
	s := &apiServer{answers: answers}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)

	s.mu.Lock()
	s.seen = append(s.seen, seenRequest{
		Method:      r.Method,
		Path:        r.URL.Path,
		Query:       r.URL.Query(),
		ContentType: r.Header.Get("Content-Type"),
		Body:        string(body),
	})
	answer := s.answers[min(len(s.seen), len(s.answers))-1]
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	_, _ = io.WriteString(w, answer)
}

func (s *apiServer) requests() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenRequest(nil), s.seen...)
}

// newHandlerServer starts a server running h and closes it at the end of
// the test.
func newHandlerServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// newHangingServer starts a server that never answers. It reads the
// request body first, because only then does net/http notice that the
// client went away; the test's end releases it as well.
func newHangingServer(t *testing.T, arrived chan<- struct{}) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := newHandlerServer(t, func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if arrived != nil {
			arrived <- struct{}{}
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	return srv
}

// closedServerURL returns the address of a server that no longer listens,
// so that every request to it fails in transport.
func closedServerURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	return srv.URL
}

// stubSource hands out tokens in order, moving to the next one only when
// the current one is invalidated, as a compare-and-invalidate cache does.
type stubSource struct {
	mu          sync.Mutex
	tokens      []string
	current     int
	err         error
	invalidated []string
}

func (s *stubSource) Token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return "", s.err
	}
	return s.tokens[s.current], nil
}

func (s *stubSource) Invalidate(_ context.Context, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidated = append(s.invalidated, token)
	if token == s.tokens[s.current] && s.current < len(s.tokens)-1 {
		s.current++
	}
}

func (s *stubSource) invalidations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.invalidated...)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeFetcher counts fetches and issues tokens "tok-1", "tok-2", ... that
// live for lifetime on clock. With a gate, each fetch waits until the
// gate is closed; entered receives one value per fetch started.
type fakeFetcher struct {
	clock    *fakeClock
	lifetime time.Duration
	gate     chan struct{}
	entered  chan struct{}

	mu    sync.Mutex
	calls int
	err   error
}

func newFakeFetcher(clock *fakeClock, lifetime time.Duration) *fakeFetcher {
	entered := make(chan struct{}, 1000)
	return &fakeFetcher{clock: clock, lifetime: lifetime, entered: entered}
}

func (f *fakeFetcher) AppID() string { return "wx-test" }

func (f *fakeFetcher) FetchToken(ctx context.Context) (wechat.Token, error) {
	f.mu.Lock()
	f.calls++
	n, err := f.calls, f.err
	f.mu.Unlock()
	f.entered <- struct{}{}

	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return wechat.Token{}, ctx.Err()
		}
	}
	if err != nil {
		return wechat.Token{}, err
	}
	value := fmt.Sprintf("tok-%d", n)
	return wechat.Token{Value: value, ExpiresAt: f.clock.Now().Add(f.lifetime)}, nil
}

func (f *fakeFetcher) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeFetcher) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

var errBoom = errors.New("boom")
