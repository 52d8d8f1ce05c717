package wechat

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultRefreshMargin is how long before expiry a MemoryTokenSource
// replaces its token. It matches the five minutes in which WeChat accepts
// both the old and the new token.
const DefaultRefreshMargin = 5 * time.Minute

// fetchTimeout bounds a shared fetch, which runs detached from the
// contexts of the callers waiting for it.
const fetchTimeout = 30 * time.Second

// MemoryOption configures a MemoryTokenSource.
type MemoryOption func(*MemoryTokenSource)

// WithRefreshMargin sets how long before expiry a token is replaced; the
// default is DefaultRefreshMargin. The margin used for a token is never
// more than half its lifetime, so short-lived tokens are not refetched
// on every call. A negative d means zero: keep a token until it expires.
func WithRefreshMargin(d time.Duration) MemoryOption {
	return func(s *MemoryTokenSource) { s.margin = max(d, 0) }
}

// WithMemoryClock replaces time.Now when judging whether the cached
// token is fresh. A nil now restores time.Now.
func WithMemoryClock(now func() time.Time) MemoryOption {
	return func(s *MemoryTokenSource) {
		s.now = now
		if now == nil {
			s.now = time.Now
		}
	}
}

// MemoryTokenSource is a TokenSource that caches one account's token in
// process. Callers that find no fresh token share a single fetch; the
// fetch runs to completion even if they give up waiting, so its token is
// there for the next caller. It is safe for concurrent use.
//
// A token stops being fresh once it is within the refresh margin of its
// expiry. If the refresh fails while the old token has not yet expired,
// callers get the old token rather than the error.
type MemoryTokenSource struct {
	fetcher Fetcher
	margin  time.Duration
	now     func() time.Time

	// current is read without the lock so that a cache hit never waits.
	current atomic.Pointer[cachedToken]

	// mu guards inflight.
	mu       sync.Mutex
	inflight *fetchCall
}

// cachedToken is a token with the moment it stops being fresh.
type cachedToken struct {
	Token
	refreshAt time.Time
}

// fetchCall is one fetch that any number of callers wait for. token and
// err are written before done is closed.
type fetchCall struct {
	done  chan struct{}
	token string
	err   error
}

// NewMemoryTokenSource returns a source that gets its tokens from f.
func NewMemoryTokenSource(f Fetcher, opts ...MemoryOption) *MemoryTokenSource {
	s := &MemoryTokenSource{fetcher: f, margin: DefaultRefreshMargin, now: time.Now}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// Token returns the cached token while it is fresh, and otherwise waits
// for a fetch. It returns ctx.Err() if ctx ends first; the fetch goes on.
func (s *MemoryTokenSource) Token(ctx context.Context) (string, error) {
	if v, ok := s.fresh(); ok {
		return v, nil
	}

	call := s.join(ctx)
	select {
	case <-call.done:
		return s.result(call)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Invalidate drops the cached token if it is still token. A rejection of
// a token that has already been replaced changes nothing.
func (s *MemoryTokenSource) Invalidate(_ context.Context, token string) {
	c := s.current.Load()
	if token == "" || c == nil || c.Value != token {
		return
	}
	s.current.CompareAndSwap(c, nil)
}

// String names the source by account, never by token.
func (s *MemoryTokenSource) String() string {
	return "MemoryTokenSource(" + s.fetcher.AppID() + ")"
}

// Format prints String for every verb, so that no verb makes fmt walk the
// source's fields, which hold the token and change under concurrent use.
func (s *MemoryTokenSource) Format(f fmt.State, _ rune) {
	_, _ = f.Write([]byte(s.String()))
}

func (s *MemoryTokenSource) fresh() (string, bool) {
	c := s.current.Load()
	if c == nil || !s.now().Before(c.refreshAt) {
		return "", false
	}
	return c.Value, true
}

// join returns the fetch in progress, starting one if there is none. It
// checks freshness again under the lock, since a fetch may have finished
// since the caller looked.
func (s *MemoryTokenSource) join(ctx context.Context) *fetchCall {
	s.mu.Lock()
	defer s.mu.Unlock()

	if v, ok := s.fresh(); ok {
		call := &fetchCall{done: make(chan struct{}), token: v}
		close(call.done)
		return call
	}

	if s.inflight == nil {
		s.inflight = &fetchCall{done: make(chan struct{})}
		go s.fetch(context.WithoutCancel(ctx), s.inflight)
	}
	return s.inflight
}

// fetch runs one fetch for call and publishes its outcome.
func (s *MemoryTokenSource) fetch(ctx context.Context, call *fetchCall) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()

	tok, err := s.fetcher.FetchToken(ctx)
	if err == nil && tok.Value == "" {
		err = errors.New("fetch token: fetcher returned an empty token")
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	if err == nil {
		s.current.Store(s.cache(tok))
	}
	call.token, call.err = tok.Value, err
	s.inflight = nil
	close(call.done)
}

// cache works out when tok stops being fresh: the margin before expiry,
// capped at half the lifetime left.
func (s *MemoryTokenSource) cache(tok Token) *cachedToken {
	lifetime := tok.ExpiresAt.Sub(s.now())
	margin := max(min(s.margin, lifetime/2), 0)
	return &cachedToken{Token: tok, refreshAt: tok.ExpiresAt.Add(-margin)}
}

// result is what a caller of a finished fetch gets: its token, or on
// failure the cached token if that has not expired yet.
func (s *MemoryTokenSource) result(call *fetchCall) (string, error) {
	if call.err == nil {
		return call.token, nil
	}

	if c := s.current.Load(); c != nil && c.ValidAt(s.now(), 0) {
		return c.Value, nil
	}
	return "", call.err
}
