package tokencache

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxnotify/wxnotify/wechat"
)

func TestCachesShareOneFetchPerLifetime(t *testing.T) {
	t.Parallel()
	// 40 s lifetime: margin 10 s, so refreshes at 30 s, 60 s, ... and no
	// token is served in its last 5 s.
	env := setup(t, 40*time.Second)
	var caches []*Cache
	for range 5 {
		caches = append(caches, env.newCache())
	}

	var waitsAfterStart uint64
	for step := range 90 {
		tokens, errs := hammer(caches, 20)
		if len(errs) > 0 {
			t.Fatalf("second %d: %d errors, first: %v", step, len(errs), errs[0])
		}
		now := env.clock.Now()
		for _, tok := range tokens {
			exp, ok := env.fetcher.expiry(tok)
			if !ok || !now.Before(exp.Add(-5*time.Second)) {
				t.Fatalf("second %d: served a token in its last 5 s (or unknown)", step)
			}
		}
		waitIdle(t, caches...)
		if step == 0 {
			waitsAfterStart = totalStats(caches).Waits
		}
		env.clock.Advance(time.Second)
	}

	if got := env.fetcher.calls.Load(); got != 3 {
		t.Errorf("fetches over 90 s of 40 s tokens = %d, want 3 (at 0, 30, 60 s)", got)
	}
	if got := totalStats(caches).Waits; got != waitsAfterStart {
		t.Errorf("callers waited %d times after the first token, want 0", got-waitsAfterStart)
	}
	if got := env.events.count(EventRefreshed); got != 3 {
		t.Errorf("refreshed events = %d, want 3", got)
	}
}

func totalStats(caches []*Cache) Stats {
	var sum Stats
	for _, c := range caches {
		s := c.Stats()
		sum.MemoryHits += s.MemoryHits
		sum.Waits += s.Waits
		sum.RedisReads += s.RedisReads
		sum.RedisErrors += s.RedisErrors
		sum.Fetches += s.Fetches
		sum.FetchErrors += s.FetchErrors
		sum.LockWaits += s.LockWaits
		sum.Invalidations += s.Invalidations
	}
	return sum
}

func TestRefreshAheadServesOldTokenWhileFetching(t *testing.T) {
	t.Parallel()
	env := setup(t, 40*time.Second)
	c := env.newCache()
	ctx := context.Background()
	old := mustToken(t, c)

	open := env.fetcher.closeGate()
	defer open()
	env.clock.Advance(31 * time.Second) // inside the margin, before its half
	waits := c.Stats().Waits

	for range 1000 {
		callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		got, err := c.Token(callCtx)
		cancel()
		if err != nil || got != old {
			t.Fatalf("Token during refresh-ahead = (%q, %v), want the old token", got, err)
		}
	}
	waitFor(t, "the background fetch", func() bool { return env.fetcher.calls.Load() == 2 })
	open()
	waitIdle(t, c)

	if got := mustToken(t, c); got == old {
		t.Error("still serving the old token after the refresh finished")
	}
	if got := c.Stats().Waits; got != waits {
		t.Errorf("callers waited %d times during refresh-ahead, want 0", got-waits)
	}
	if got := env.fetcher.calls.Load(); got != 2 {
		t.Errorf("fetches = %d, want 2 (one refresh-ahead for 1000 calls)", got)
	}
}

func TestTokenIsNotServedInLastHalfOfMargin(t *testing.T) {
	t.Parallel()
	env := setup(t, 40*time.Second)
	c := env.newCache()
	mustToken(t, c)

	open := env.fetcher.closeGate()
	defer open()
	env.clock.Advance(36 * time.Second) // margin 10 s: past expiry-5s

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	got, err := c.Token(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || got != "" {
		t.Fatalf("Token near expiry with a stalled fetch = (%q, %v), want to wait until ctx ends",
			got, err)
	}

	open()
	if tok := mustToken(t, c); tok == got {
		t.Error("no new token after the fetch completed")
	}
}

func TestMarginScalesWithLifetime(t *testing.T) {
	t.Parallel()
	fetched := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name          string
		lifetime      time.Duration
		margin        time.Duration
		wantRefreshIn time.Duration
		wantHardIn    time.Duration
	}{
		{"wechat 7200s uses the full margin", 7200 * time.Second, 5 * time.Minute,
			7200*time.Second - 5*time.Minute, 7200*time.Second - 150*time.Second},
		{"40s lifetime uses a quarter", 40 * time.Second, 5 * time.Minute,
			30 * time.Second, 35 * time.Second},
		{"stable token read with 5 min left", 5 * time.Minute, 5 * time.Minute,
			225 * time.Second, 262500 * time.Millisecond},
		{"small configured margin wins", time.Hour, time.Minute,
			59 * time.Minute, 59*time.Minute + 30*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok := wechat.Token{Value: "x", ExpiresAt: fetched.Add(tt.lifetime)}
			e := newEntry(tok, fetched, tt.margin)
			if got := e.refreshAt.Sub(fetched); got != tt.wantRefreshIn {
				t.Errorf("refresh after %v, want %v", got, tt.wantRefreshIn)
			}
			if got := e.hardAt.Sub(fetched); got != tt.wantHardIn {
				t.Errorf("stop serving after %v, want %v", got, tt.wantHardIn)
			}
		})
	}
}

func TestInvalidateStormKeepsTokenJustFetched(t *testing.T) {
	t.Parallel()
	env := setup(t, 7200*time.Second)
	caches := []*Cache{env.newCache(), env.newCache(), env.newCache()}
	ctx := context.Background()
	old := mustToken(t, caches[0])
	for _, c := range caches[1:] {
		if got := mustToken(t, c); got != old {
			t.Fatal("processes do not share the first token")
		}
	}

	caches[0].Invalidate(ctx, old)
	fresh := mustToken(t, caches[0])

	var wg sync.WaitGroup
	for _, c := range caches {
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.Invalidate(ctx, old)
			}()
		}
	}
	wg.Wait()

	for i, c := range caches {
		if got := mustToken(t, c); got != fresh {
			t.Errorf("cache %d serves %q after the storm, want the fresh token", i, got)
		}
	}
	if got := storedToken(t, caches[0]); got != fresh {
		t.Errorf("redis holds %q after the storm, want the fresh token", got)
	}
	if got := env.fetcher.calls.Load(); got != 2 {
		t.Errorf("fetches = %d, want 2", got)
	}
}

func TestInvalidateIgnoresTokenNoLongerHeld(t *testing.T) {
	t.Parallel()
	env := setup(t, 7200*time.Second)
	c := env.newCache()
	tok := mustToken(t, c)

	c.Invalidate(context.Background(), "TOKEN-some-older-one")

	if got := mustToken(t, c); got != tok {
		t.Error("invalidating another token dropped the current one")
	}
	if got := storedToken(t, c); got != tok {
		t.Error("invalidating another token dropped the stored one")
	}
	if s := c.Stats(); s.Invalidations != 0 || s.Fetches != 1 {
		t.Errorf("stats = %+v, want no invalidation and one fetch", s)
	}
}

func TestRejectedTokenIsNotReadBackFromRedis(t *testing.T) {
	t.Parallel()
	env := setup(t, 7200*time.Second)
	faults := &faultHook{}
	rdb := newClient(t)
	rdb.AddHook(faults)
	c := env.newCacheWith(rdb)
	old := mustToken(t, c)

	faults.failing.Store(true) // the compare-and-delete in redis fails
	c.Invalidate(context.Background(), old)
	faults.failing.Store(false)

	if got := storedToken(t, c); got != old {
		t.Fatal("setup: the rejected token should still be in redis")
	}
	if got := mustToken(t, c); got == old {
		t.Error("served the rejected token again, read back from redis")
	}
	if n := env.fetcher.calls.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2", n)
	}
}

func TestConcurrentInvalidationsAcrossProcessesFetchOnce(t *testing.T) {
	t.Parallel()
	env := setup(t, 7200*time.Second)
	var caches []*Cache
	for range 4 {
		caches = append(caches, env.newCache())
	}
	old := mustToken(t, caches[0])
	hammer(caches, 1)

	var (
		mu  sync.Mutex
		got = map[string]int{}
		wg  sync.WaitGroup
	)
	for _, c := range caches {
		for range 25 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.Invalidate(context.Background(), old)
				tok, err := c.Token(context.Background())
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("Token after invalidate: %v", err)
				}
				got[tok]++
			}()
		}
	}
	wg.Wait()

	if len(got) != 1 || got[old] != 0 {
		t.Errorf("tokens served after invalidation = %d distinct (old served %d times), want one new",
			len(got), got[old])
	}
	if n := env.fetcher.calls.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2: the first token and one replacement", n)
	}
}

func TestWaiterTakesHolderTokenInsteadOfFetching(t *testing.T) {
	t.Parallel()
	env := setup(t, 7200*time.Second)
	a, b := env.newCache(), env.newCache()
	open := env.fetcher.closeGate()
	defer open()

	results := make(chan string, 2)
	go func() { results <- tokenOrEmpty(a) }()
	waitFor(t, "a's fetch", func() bool { return env.fetcher.calls.Load() == 1 })
	go func() { results <- tokenOrEmpty(b) }()
	waitFor(t, "b to wait for the lock", func() bool { return b.Stats().LockWaits > 0 })
	open()

	if x, y := <-results, <-results; x == "" || x != y {
		t.Error("the two processes got different tokens")
	}
	if n := env.fetcher.calls.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1", n)
	}
	if s := b.Stats(); s.Fetches != 0 {
		t.Errorf("waiting process fetched %d times, want 0", s.Fetches)
	}
}

func TestWaitForStuckHolderIsBounded(t *testing.T) {
	t.Parallel()
	env := setup(t, 7200*time.Second)
	a := env.newCache()
	b := env.newCache(func(o *Options) { o.WaitTimeout = 300 * time.Millisecond })
	open := env.fetcher.closeGate()
	defer func() { open(); waitIdle(t, a) }()

	go a.Token(context.Background())
	waitFor(t, "a's fetch", func() bool { return env.fetcher.calls.Load() == 1 })

	_, err := b.Token(context.Background())
	if !errors.Is(err, ErrWaitTimeout) {
		t.Fatalf("Token while another process holds the lock = %v, want ErrWaitTimeout", err)
	}
	if n := env.fetcher.calls.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1 (the waiter must not fetch)", n)
	}
}

func TestCallerGivingUpDoesNotFailOthers(t *testing.T) {
	t.Parallel()
	env := setup(t, 7200*time.Second)
	c := env.newCache()
	open := env.fetcher.closeGate()
	defer open()

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := c.Token(ctx)
		first <- err
	}()
	waitFor(t, "the fetch", func() bool { return env.fetcher.calls.Load() == 1 })
	second := make(chan string, 1)
	go func() { second <- tokenOrEmpty(c) }()
	waitFor(t, "the second caller to wait", func() bool { return c.Stats().Waits == 2 })

	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller got %v, want context.Canceled", err)
	}
	open()
	if tok := <-second; tok == "" {
		t.Error("second caller got no token")
	}
	if n := env.fetcher.calls.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1", n)
	}
}

func TestLockIsReleasedOnlyByItsHolder(t *testing.T) {
	t.Parallel()
	rdb := newClient(t)
	s := newStore(rdb, testPrefix(t), "wxlock", 5*time.Second)
	ctx := context.Background()

	first := mustAcquire(t, s)
	if again, _ := s.acquire(ctx); again != "" {
		t.Fatal("took a lock that is held")
	}
	if ttl := rdb.PTTL(ctx, s.lockKey).Val(); ttl <= 0 || ttl > 5*time.Second {
		t.Errorf("lock lease = %v, want in (0, 5s]", ttl)
	}

	if err := s.release(ctx, "not-the-owner"); err != nil {
		t.Fatal(err)
	}
	if got := rdb.Get(ctx, s.lockKey).Val(); got != first {
		t.Fatal("a non-holder released the lock")
	}

	if err := s.release(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := mustAcquire(t, s)

	tok := wechat.Token{Value: "T", ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.save(ctx, tok, time.Now(), first); err != nil {
		t.Fatal(err)
	}
	if err := s.putHold(ctx, hold{Kind: holdCooldown, UntilMS: 1}, time.Second, first); err != nil {
		t.Fatal(err)
	}
	if got := rdb.Get(ctx, s.lockKey).Val(); got != second {
		t.Error("a former holder's save or hold released the current holder's lock")
	}
}

func mustAcquire(t *testing.T, s *store) string {
	t.Helper()
	owner, err := s.acquire(context.Background())
	if err != nil || owner == "" {
		t.Fatalf("acquire free lock = (%q, %v)", owner, err)
	}
	return owner
}

func TestEndpointIsPartOfTheKey(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	rdb := redis.NewClient(&redis.Options{Addr: testRedisAddr})
	defer rdb.Close()
	plain := newFakeFetcher(clock.Now, time.Hour)
	tests := []struct {
		name    string
		fetcher wechat.Fetcher
		opts    Options
		want    string
	}{
		{"no endpoint known", plain, Options{}, "wxnotify:token:{wxtest}"},
		{"endpoint from the fetcher", endpointFetcher{plain, wechat.StableTokenEndpoint}, Options{},
			"wxnotify:token:{wxtest:stable_token}"},
		{"endpoint from options wins", endpointFetcher{plain, wechat.StableTokenEndpoint},
			Options{Endpoint: "token", KeyPrefix: "p:"}, "p:{wxtest:token}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := New(rdb, tt.fetcher, tt.opts)
			if c.store.tokenKey != tt.want {
				t.Errorf("token key = %q, want %q", c.store.tokenKey, tt.want)
			}
			if c.store.lockKey != tt.want+":lock" || c.store.holdKey != tt.want+":hold" {
				t.Errorf("lock/hold keys = %q, %q", c.store.lockKey, c.store.holdKey)
			}
		})
	}
}

func TestStableAndClassicTokensAreKeptApart(t *testing.T) {
	t.Parallel()
	env := setup(t, 7200*time.Second)
	stable := New(newClient(t), endpointFetcher{env.fetcher, wechat.StableTokenEndpoint}, env.options())
	classic := New(newClient(t), endpointFetcher{env.fetcher, wechat.ClassicTokenEndpoint}, env.options())

	if mustToken(t, stable) == mustToken(t, classic) {
		t.Error("stable and classic caches share a token")
	}
	if n := env.fetcher.calls.Load(); n != 2 {
		t.Errorf("fetches = %d, want one per endpoint", n)
	}
}

// endpointFetcher is a fake that names its endpoint, as
// *wechat.TokenFetcher does.
type endpointFetcher struct {
	*fakeFetcher
	endpoint wechat.TokenEndpoint
}

func (f endpointFetcher) Endpoint() wechat.TokenEndpoint { return f.endpoint }

func mustToken(t *testing.T, c *Cache) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tok, err := c.Token(ctx)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return tok
}

// tokenOrEmpty is Token for goroutines other than the test's: "" on error.
func tokenOrEmpty(c *Cache) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tok, _ := c.Token(ctx)
	return tok
}

// storedToken returns the token Redis holds for c's account.
func storedToken(t *testing.T, c *Cache) string {
	t.Helper()
	r, err := c.store.read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r.token.Value
}
