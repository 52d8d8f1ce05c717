package tokencache

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxnotify/wxnotify/wechat"
)

// Tests use DB 12 of the Redis at testRedisAddr, each under a key prefix
// of its own that is deleted afterwards.
const (
	testRedisAddr = "127.0.0.1:6379"
	testDB        = 12
	testSecret    = "APPSECRET-do-not-leak-9f8e7d"
)

func TestMain(m *testing.M) {
	redis.SetLogger(quietRefused{})
	os.Exit(m.Run())
}

// quietRefused drops go-redis's pool complaints about the closed port some
// tests point a client at, and prints everything else.
type quietRefused struct{}

func (quietRefused) Printf(_ context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if !strings.Contains(msg, "connection refused") {
		fmt.Fprintln(os.Stderr, "redis:", msg)
	}
}

// newClient returns a Redis client of its own, as a separate process
// would have. It skips the test when Redis is down, or fails it when
// CI=true.
func newClient(tb testing.TB) *redis.Client {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: testRedisAddr, DB: testDB})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()

	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis at %s is required when CI=true: %v", testRedisAddr, err)
		}
		tb.Skipf("redis at %s unavailable (CI=true makes this a failure): %v", testRedisAddr, err)
	}
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// testPrefix returns a key prefix unique to the test and deletes its keys
// when the test ends.
func testPrefix(tb testing.TB) string {
	tb.Helper()
	rdb := newClient(tb)
	prefix := "tokencache-test:" + rand.Text()[:12] + ":"
	tb.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	return prefix
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// fakeClock is a settable clock shared by the caches and the fetcher.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeFetcher plays WeChat's token endpoint: every successful call issues
// a new token living ttl on the fake clock.
type fakeFetcher struct {
	appID string
	now   func() time.Time
	ttl   time.Duration
	calls atomic.Int64

	mu     sync.Mutex
	err    error
	gate   chan struct{} // when set, a fetch waits for it to close
	issued map[string]time.Time
}

func newFakeFetcher(now func() time.Time, ttl time.Duration) *fakeFetcher {
	return &fakeFetcher{appID: "wxtest", now: now, ttl: ttl, issued: map[string]time.Time{}}
}

func (f *fakeFetcher) AppID() string { return f.appID }

func (f *fakeFetcher) FetchToken(ctx context.Context) (wechat.Token, error) {
	f.calls.Add(1)
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return wechat.Token{}, &wechat.TransportError{Op: "fetch token", Err: ctx.Err()}
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return wechat.Token{}, f.err
	}
	v := fmt.Sprintf("TOKEN-%d-%s", len(f.issued)+1, rand.Text())
	exp := f.now().Add(f.ttl)
	f.issued[v] = exp
	return wechat.Token{Value: v, ExpiresAt: exp}, nil
}

func (f *fakeFetcher) setErr(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// closeGate makes fetches wait until the returned function is called.
func (f *fakeFetcher) closeGate() (open func()) {
	g := make(chan struct{})
	f.mu.Lock()
	f.gate = g
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.gate = nil
			f.mu.Unlock()
			close(g)
		})
	}
}

func (f *fakeFetcher) expiry(token string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	exp, ok := f.issued[token]
	return exp, ok
}

func (f *fakeFetcher) tokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for v := range f.issued {
		out = append(out, v)
	}
	return out
}

// eventLog collects events from any number of caches.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(ev Event) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *eventLog) count(kind EventKind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.events {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

func (l *eventLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

// testEnv is what most tests share: one fake WeChat, one clock, one key
// prefix, and as many caches ("processes") as the test makes.
type testEnv struct {
	t       *testing.T
	prefix  string
	clock   *fakeClock
	fetcher *fakeFetcher
	events  *eventLog
}

func setup(t *testing.T, ttl time.Duration) *testEnv {
	t.Helper()
	clock := newFakeClock()
	return &testEnv{
		t:       t,
		prefix:  testPrefix(t),
		clock:   clock,
		fetcher: newFakeFetcher(clock.Now, ttl),
		events:  &eventLog{},
	}
}

func (e *testEnv) options(tune ...func(*Options)) Options {
	o := Options{KeyPrefix: e.prefix, Now: e.clock.Now, OnEvent: e.events.add}
	for _, f := range tune {
		f(&o)
	}
	return o
}

// newCache makes a cache with a Redis client of its own.
func (e *testEnv) newCache(tune ...func(*Options)) *Cache {
	e.t.Helper()
	return New(newClient(e.t), e.fetcher, e.options(tune...))
}

// newCacheWith makes a cache on rdb.
func (e *testEnv) newCacheWith(rdb redis.UniversalClient, tune ...func(*Options)) *Cache {
	return New(rdb, e.fetcher, e.options(tune...))
}

// waitIdle waits until no refresh runs in any of the caches.
func waitIdle(t *testing.T, caches ...*Cache) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, c := range caches {
		for {
			c.mu.Lock()
			f := c.flight
			c.mu.Unlock()
			if f == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("refresh still running after 20s")
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// hammer calls Token from n goroutines on each cache and returns the
// tokens and errors, in no particular order.
func hammer(caches []*Cache, n int) ([]string, []error) {
	var (
		mu     sync.Mutex
		tokens []string
		errs   []error
		wg     sync.WaitGroup
	)
	for _, c := range caches {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				tok, err := c.Token(ctx)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				tokens = append(tokens, tok)
			}()
		}
	}
	wg.Wait()
	return tokens, errs
}

// faultHook fails every command while failing is set, as a Redis outage
// would.
type faultHook struct {
	failing atomic.Bool
}

var errInjected = errors.New("injected redis failure")

func (h *faultHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *faultHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.failing.Load() {
			cmd.SetErr(errInjected)
			return errInjected
		}
		return next(ctx, cmd)
	}
}

func (h *faultHook) ProcessPipelineHook(
	next redis.ProcessPipelineHook,
) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.failing.Load() {
			for _, cmd := range cmds {
				cmd.SetErr(errInjected)
			}
			return errInjected
		}
		return next(ctx, cmds)
	}
}

// countingHook counts the commands a client sends, by name.
type countingHook struct {
	mu    sync.Mutex
	n     int
	names map[string]int
}

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.add(cmd)
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(
	next redis.ProcessPipelineHook,
) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.add(cmd)
		}
		return next(ctx, cmds)
	}
}

func (h *countingHook) add(cmd redis.Cmder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.names == nil {
		h.names = map[string]int{}
	}
	h.n++
	h.names[strings.ToLower(cmd.Name())]++
}

func (h *countingHook) reset() (int, map[string]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, names := h.n, h.names
	h.n, h.names = 0, nil
	return n, names
}
