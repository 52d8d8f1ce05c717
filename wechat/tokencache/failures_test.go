package tokencache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxnotify/wxnotify/wechat"
)

func TestRedisOutageServesMemoryAndBoundsFetches(t *testing.T) {
	t.Parallel()
	env := setup(t, 40*time.Second)
	faults := &faultHook{}
	rdb := newClient(t)
	rdb.AddHook(faults)
	c := env.newCacheWith(rdb)
	first := mustToken(t, c)

	faults.failing.Store(true)
	const seconds = 200
	for step := range seconds {
		tokens, errs := hammer([]*Cache{c}, 20)
		if len(errs) > 0 {
			t.Fatalf("second %d of the outage: %v", step, errs[0])
		}
		now := env.clock.Now()
		for _, tok := range tokens {
			if exp, _ := env.fetcher.expiry(tok); !now.Before(exp) {
				t.Fatalf("second %d: served an expired token", step)
			}
		}
		waitIdle(t, c)
		env.clock.Advance(time.Second)
	}

	// One fetch per MinFetchInterval at most, plus the one before.
	maxFetches := int64(1 + seconds/30 + 1)
	if n := env.fetcher.calls.Load(); n > maxFetches || n < 2 {
		t.Errorf("fetches during a %d s outage = %d, want 2..%d", seconds, n, maxFetches)
	}
	if n := env.events.count(EventRedisError); n < 1 || n > seconds/30+1 {
		t.Errorf("redis_error events = %d, want 1..%d (rate-limited)", n, seconds/30+1)
	}
	if c.Stats().RedisErrors == 0 {
		t.Error("no redis errors counted")
	}

	faults.failing.Store(false)
	env.clock.Advance(40 * time.Second)
	healed := mustToken(t, c)
	other := env.newCache()
	if healed == first || mustToken(t, other) != healed {
		t.Error("after the outage the processes do not share the token again")
	}
}

func TestRedisDownWithoutTokenFetchesOncePerInterval(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	fetcher := newFakeFetcher(clock.Now, 7200*time.Second)
	rdb := redis.NewClient(&redis.Options{
		Addr:          closedAddr(t),
		MaxRetries:    -1,
		DialTimeout:   200 * time.Millisecond,
		DialerRetries: 1,
	})
	defer rdb.Close()
	events := &eventLog{}
	c := New(rdb, fetcher, Options{Now: clock.Now, OnEvent: events.add})

	tokens, errs := hammer([]*Cache{c}, 50)
	if len(errs) > 0 || fetcher.calls.Load() != 1 {
		t.Fatalf("first calls: %d errors, %d fetches; want 0 and 1",
			len(errs), fetcher.calls.Load())
	}
	c.Invalidate(context.Background(), tokens[0])

	_, errs = hammer([]*Cache{c}, 50)
	var cd *CooldownError
	if len(errs) != 50 || !errors.As(errs[0], &cd) {
		t.Fatalf("calls within MinFetchInterval: %d errors (%v), want 50 *CooldownError",
			len(errs), errs)
	}
	if want := clock.Now().Add(DefaultMinFetchInterval); !cd.Until.Equal(want) {
		t.Errorf("cooldown until %v, want %v", cd.Until, want)
	}
	if n := fetcher.calls.Load(); n != 1 {
		t.Errorf("fetches within the interval = %d, want 1", n)
	}
	if n := events.count(EventRedisError); n != 1 {
		t.Errorf("redis_error events within 30 s = %d, want 1", n)
	}

	clock.Advance(DefaultMinFetchInterval)
	if tok := mustToken(t, c); tok == tokens[0] {
		t.Error("served the invalidated token")
	}
	if n := fetcher.calls.Load(); n != 2 {
		t.Errorf("fetches after the interval = %d, want 2", n)
	}
	if n := events.count(EventRedisError); n != 2 {
		t.Errorf("redis_error events over 30 s = %d, want 2", n)
	}
}

func TestMisconfigurationBlocksFetchesInAllProcesses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		code int
		msg  string
	}{
		{"invalid appid", wechat.CodeInvalidAppID, "invalid appid"},
		{"invalid secret", wechat.CodeInvalidSecret, "invalid appsecret"},
		{"ip not whitelisted", wechat.CodeIPNotWhitelisted,
			"invalid ip 1.2.3.4 ipv6 ::ffff:1.2.3.4, not in whitelist"},
		{"frozen secret", wechat.CodeSecretFrozen, "appsecret is frozen"},
		{"bad secret on the token endpoint", wechat.CodeInvalidCredential, "invalid credential"},
		{"bad grant type", wechat.CodeInvalidGrantType, "invalid grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := setup(t, 7200*time.Second)
			env.fetcher.setErr(wechatErr(tt.code, tt.msg))
			var caches []*Cache
			for range 4 {
				caches = append(caches, env.newCache())
			}

			assertBlocked(t, caches, tt.code, tt.msg)
			reads := totalStats(caches).RedisReads
			assertBlocked(t, caches, tt.code, tt.msg)

			if n := env.fetcher.calls.Load(); n != 1 {
				t.Errorf("fetches = %d, want 1 across 4 processes", n)
			}
			if n := env.events.count(EventBlocked); n != 1 {
				t.Errorf("blocked events = %d, want 1", n)
			}
			if got := totalStats(caches).RedisReads; got != reads {
				t.Errorf("blocked processes read redis %d more times, want 0", got-reads)
			}

			env.fetcher.setErr(nil)
			env.clock.Advance(DefaultBlockFor)
			mustToken(t, caches[3])
			if n := env.fetcher.calls.Load(); n != 2 {
				t.Errorf("fetches after the block = %d, want 2", n)
			}
		})
	}
}

func assertBlocked(t *testing.T, caches []*Cache, code int, msg string) {
	t.Helper()
	_, errs := hammer(caches, 10)
	if len(errs) != 10*len(caches) {
		t.Fatalf("%d of %d calls failed, want all", len(errs), 10*len(caches))
	}
	for _, err := range errs {
		var b *BlockedError
		if !errors.As(err, &b) {
			t.Fatalf("error = %v, want *BlockedError", err)
		}
		if b.Cause.Code != code || b.Cause.Message != msg || b.AppID != "wxtest" {
			t.Fatalf("blocked by %+v for %q, want errcode %d %q", b.Cause, b.AppID, code, msg)
		}
		if got, _ := wechat.Code(err); got != code {
			t.Fatalf("wechat.Code = %d, want %d", got, code)
		}
	}
}

func TestTransientFetchErrorPausesFetchesEverywhere(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		err     error
		wantWhy string // what another process learns
	}{
		{"system busy", wechatErr(-1, "system error"), "errcode -1"},
		{"system error", wechatErr(-1000, "system error"), "errcode -1000"},
		{"http 502", &wechat.StatusError{Op: "fetch token", StatusCode: 502}, "http status 502"},
		{"transport", transportErr("connection reset"), "transport"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := setup(t, 7200*time.Second)
			env.fetcher.setErr(tt.err)
			a, b := env.newCache(), env.newCache()

			_, err := a.Token(context.Background())
			var blocked *BlockedError
			if !errors.Is(err, tt.err) || errors.As(err, &blocked) {
				t.Fatalf("first error = %v, want the fetch error itself", err)
			}
			_, err = b.Token(context.Background())
			var cd *CooldownError
			if !errors.As(err, &cd) || !strings.Contains(cd.Cause.Error(), tt.wantWhy) {
				t.Fatalf("other process got %v, want a cooldown naming %q", err, tt.wantWhy)
			}
			if want := env.clock.Now().Add(DefaultFetchErrorBackoff); !cd.Until.Equal(want) {
				t.Errorf("cooldown until %v, want %v", cd.Until, want)
			}
			if n := env.fetcher.calls.Load(); n != 1 {
				t.Errorf("fetches = %d, want 1", n)
			}
		})
	}
}

func TestFetchErrorBackoffDoublesAndClearsOnSuccess(t *testing.T) {
	t.Parallel()
	env := setup(t, 7200*time.Second)
	env.fetcher.setErr(wechatErr(-1, "system error"))
	a, b := env.newCache(), env.newCache()
	wantPauses := []time.Duration{5, 10, 20, 40, 60, 60}

	for i, want := range wantPauses {
		c := []*Cache{a, b}[i%2] // the count is shared through redis
		_, err := c.Token(context.Background())
		if code, _ := wechat.Code(err); code != -1 {
			t.Fatalf("attempt %d: %v, want errcode -1", i+1, err)
		}
		_, err = c.Token(context.Background())
		var cd *CooldownError
		if !errors.As(err, &cd) || cd.Until.Sub(env.clock.Now()) != want*time.Second {
			t.Fatalf("attempt %d: pause %v, want %v", i+1, err, want*time.Second)
		}
		env.clock.Advance(want * time.Second)
	}

	env.fetcher.setErr(nil)
	mustToken(t, a)
	if n := newClient(t).Exists(context.Background(), a.store.holdKey).Val(); n != 0 {
		t.Error("the cooldown record survived a successful fetch")
	}
	if n := env.events.count(EventFetchFailed); n != len(wantPauses) {
		t.Errorf("fetch_failed events = %d, want %d", n, len(wantPauses))
	}
}

func TestErrorsEventsAndRedisHoldNoSecret(t *testing.T) {
	t.Parallel()
	env := setup(t, 7200*time.Second)
	rdb := newClient(t)
	faults := &faultHook{}
	rdb.AddHook(faults)
	a := env.newCacheWith(rdb, func(o *Options) { o.WaitTimeout = 100 * time.Millisecond })
	b := env.newCache(func(o *Options) { o.WaitTimeout = 100 * time.Millisecond })
	var errs []error
	collect := func(c *Cache) {
		if _, err := c.Token(context.Background()); err != nil {
			errs = append(errs, err)
		}
	}

	tok := mustToken(t, a)
	a.Invalidate(context.Background(), tok)
	env.fetcher.setErr(wechatErr(-1, "system error"))
	collect(a) // the fetch error
	collect(b) // a cooldown learnt from redis
	env.clock.Advance(time.Minute)
	env.fetcher.setErr(wechatErr(wechat.CodeInvalidSecret, "invalid appsecret"))
	collect(b) // blocked
	faults.failing.Store(true)
	collect(a) // redis down: lone fetch, blocked again
	collect(a) // redis down: blocked locally, no fetch
	if len(errs) != 5 {
		t.Fatalf("collected %d errors, want 5: %v", len(errs), errs)
	}

	secrets := append(env.fetcher.tokens(), testSecret)
	sum := sha256.Sum256([]byte(testSecret))
	secrets = append(secrets, hex.EncodeToString(sum[:]), wechat.Fingerprint(testSecret))
	for _, err := range errs {
		assertNoSecret(t, "error", err.Error(), secrets)
	}
	for _, ev := range env.events.all() {
		assertNoSecret(t, "event", fmt.Sprintf("%+v %v", ev, ev.Err), secrets)
	}
	for _, key := range []string{a.store.holdKey, a.store.lockKey} {
		assertNoSecret(t, "redis "+key, newClient(t).Get(context.Background(), key).Val(), secrets)
	}
}

func wechatErr(code int, msg string) error {
	return &wechat.Error{Op: "fetch token", Code: code, Message: msg, RID: "0a1b-2c3d-4e5f"}
}

func transportErr(msg string) error {
	return &wechat.TransportError{Op: "fetch token", Err: errors.New(msg)}
}

func assertNoSecret(t *testing.T, where, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s contains a token or the secret: %s", where, text)
		}
	}
}

func TestSteadyStateTokenCallsSendNoRedisCommands(t *testing.T) {
	t.Parallel()
	env := setup(t, 7200*time.Second)
	counter := &countingHook{}
	rdb := newClient(t)
	rdb.AddHook(counter)
	c := env.newCacheWith(rdb)
	mustToken(t, c)
	counter.reset()

	const calls = 10000
	tokens, errs := hammer([]*Cache{c}, calls)
	if len(errs) > 0 || len(tokens) != calls {
		t.Fatalf("steady state: %d errors", len(errs))
	}
	if n, names := counter.reset(); n != 0 {
		t.Errorf("%d calls sent %d redis commands (%v), want 0", calls, n, names)
	}

	// A whole lifetime, one call per second, refresh included.
	for range 7200 {
		mustToken(t, c)
		waitIdle(t, c)
		env.clock.Advance(time.Second)
	}
	n, names := counter.reset()
	t.Logf("redis commands over one lifetime of 7200 Token calls: %d (%.5f per call) %v",
		n, float64(n)/7200, names)
	if n > 6 {
		t.Errorf("a lifetime with one refresh cost %d commands, want at most 6", n)
	}
}
