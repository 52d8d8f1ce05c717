package wechat_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/wechat"
)

func TestMemoryTokenSourceSharesOneFetch(t *testing.T) {
	t.Parallel()
	f := newFakeFetcher(newFakeClock(), 2*time.Hour)
	f.gate = make(chan struct{})
	s := wechat.NewMemoryTokenSource(f, wechat.WithMemoryClock(f.clock.Now))

	const callers = 100
	var started, done sync.WaitGroup
	tokens := make([]string, callers)
	errs := make([]error, callers)
	for i := range callers {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			tokens[i], errs[i] = s.Token(context.Background())
		}()
	}
	started.Wait()
	<-f.entered
	close(f.gate)
	done.Wait()

	if n := f.callCount(); n != 1 {
		t.Errorf("%d callers caused %d fetches, want 1", callers, n)
	}
	for i := range callers {
		if errs[i] != nil || tokens[i] != "tok-1" {
			t.Fatalf("caller %d got %q, %v; want tok-1", i, tokens[i], errs[i])
		}
	}
}

func TestMemoryTokenSourceCompareAndInvalidate(t *testing.T) {
	t.Parallel()
	f := newFakeFetcher(newFakeClock(), 2*time.Hour)
	s := wechat.NewMemoryTokenSource(f, wechat.WithMemoryClock(f.clock.Now))
	ctx := context.Background()

	steps := []struct {
		invalidate string
		wantToken  string
		wantCalls  int
	}{
		{invalidate: "", wantToken: "tok-1", wantCalls: 1},
		{invalidate: "someone-elses", wantToken: "tok-1", wantCalls: 1},
		{invalidate: "tok-1", wantToken: "tok-2", wantCalls: 2},
		{invalidate: "tok-1", wantToken: "tok-2", wantCalls: 2}, // stale rejection
		{invalidate: "tok-2", wantToken: "tok-3", wantCalls: 3},
	}
	for i, st := range steps {
		s.Invalidate(ctx, st.invalidate)
		got, err := s.Token(ctx)
		if err != nil || got != st.wantToken || f.callCount() != st.wantCalls {
			t.Fatalf("step %d: Invalidate(%q) then Token = %q, %v after %d fetches; "+
				"want %q after %d", i, st.invalidate, got, err, f.callCount(),
				st.wantToken, st.wantCalls)
		}
	}
}

func TestMemoryTokenSourceRefreshesAheadOfExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		lifetime time.Duration
		opts     []wechat.MemoryOption
		// keepUntil is the last moment after the fetch at which the first
		// token is still handed out; one nanosecond later it is replaced.
		keepUntil time.Duration
	}{
		{
			name:      "default margin of five minutes",
			lifetime:  2 * time.Hour,
			keepUntil: 2*time.Hour - 5*time.Minute - time.Nanosecond,
		},
		{
			name:      "margin capped at half a short lifetime",
			lifetime:  time.Minute,
			keepUntil: 30*time.Second - time.Nanosecond,
		},
		{
			name:      "custom margin",
			lifetime:  2 * time.Hour,
			opts:      []wechat.MemoryOption{wechat.WithRefreshMargin(time.Minute)},
			keepUntil: 2*time.Hour - time.Minute - time.Nanosecond,
		},
		{
			name:      "negative margin keeps the token until expiry",
			lifetime:  2 * time.Hour,
			opts:      []wechat.MemoryOption{wechat.WithRefreshMargin(-time.Minute)},
			keepUntil: 2*time.Hour - time.Nanosecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			f := newFakeFetcher(clock, tt.lifetime)
			opts := []wechat.MemoryOption{wechat.WithMemoryClock(clock.Now)}
			s := wechat.NewMemoryTokenSource(f, append(opts, tt.opts...)...)

			assertToken(t, s, "tok-1")
			clock.Add(tt.keepUntil)
			assertToken(t, s, "tok-1")
			clock.Add(time.Nanosecond)
			assertToken(t, s, "tok-2")
		})
	}
}

func TestMemoryTokenSourceKeepsValidTokenWhenRefreshFails(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	f := newFakeFetcher(clock, 2*time.Hour)
	s := wechat.NewMemoryTokenSource(f, wechat.WithMemoryClock(clock.Now))
	assertToken(t, s, "tok-1")

	f.setErr(errBoom)
	clock.Add(2*time.Hour - time.Minute)
	assertToken(t, s, "tok-1")
	if n := f.callCount(); n != 2 {
		t.Errorf("fetches = %d, want a refresh attempt inside the margin", n)
	}

	clock.Add(time.Minute)
	if _, err := s.Token(context.Background()); !errors.Is(err, errBoom) {
		t.Errorf("after expiry err = %v, want the fetch error", err)
	}
}

func TestMemoryTokenSourceReturnsFetchError(t *testing.T) {
	t.Parallel()
	f := newFakeFetcher(newFakeClock(), 2*time.Hour)
	f.setErr(errBoom)
	s := wechat.NewMemoryTokenSource(f, wechat.WithMemoryClock(f.clock.Now))

	tok, err := s.Token(context.Background())
	if !errors.Is(err, errBoom) || tok != "" {
		t.Errorf("Token = %q, %v; want \"\" and the fetch error", tok, err)
	}
}

func TestMemoryTokenSourceRejectsEmptyToken(t *testing.T) {
	t.Parallel()
	s := wechat.NewMemoryTokenSource(emptyFetcher{})

	if tok, err := s.Token(context.Background()); err == nil {
		t.Errorf("Token = %q, nil; want an error for an empty token", tok)
	}
}

func TestMemoryTokenSourceFetchOutlivesCancelledCaller(t *testing.T) {
	t.Parallel()
	f := newFakeFetcher(newFakeClock(), 2*time.Hour)
	f.gate = make(chan struct{})
	s := wechat.NewMemoryTokenSource(f, wechat.WithMemoryClock(f.clock.Now))
	ctx, cancel := context.WithCancel(context.Background())

	go func() {
		<-f.entered
		cancel()
	}()
	if _, err := s.Token(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Token err = %v, want context.Canceled", err)
	}

	close(f.gate)
	assertToken(t, s, "tok-1")
	if n := f.callCount(); n != 1 {
		t.Errorf("fetches = %d, want later callers to get the first fetch's token", n)
	}
}

// emptyFetcher breaks the Fetcher contract by returning no token and no
// error.
type emptyFetcher struct{}

func (emptyFetcher) AppID() string { return "wx-empty" }

func (emptyFetcher) FetchToken(context.Context) (wechat.Token, error) {
	return wechat.Token{ExpiresAt: time.Now().Add(time.Hour)}, nil
}

func assertToken(t *testing.T, s *wechat.MemoryTokenSource, want string) {
	t.Helper()
	got, err := s.Token(context.Background())
	if err != nil || got != want {
		t.Fatalf("Token = %q, %v; want %q", got, err, want)
	}
}
