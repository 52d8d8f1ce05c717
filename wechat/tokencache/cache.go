package tokencache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxnotify/wxnotify/wechat"
)

// Defaults for the zero Options.
const (
	DefaultKeyPrefix         = "wxnotify:token:"
	DefaultRefreshMargin     = 5 * time.Minute
	DefaultLockLease         = 10 * time.Second
	DefaultWaitTimeout       = 5 * time.Second
	DefaultBlockFor          = 5 * time.Minute
	DefaultFetchErrorBackoff = 5 * time.Second
	DefaultMinFetchInterval  = 30 * time.Second
	DefaultReportInterval    = 30 * time.Second
)

// maxBackoffFactor caps the doubling of FetchErrorBackoff: with the
// default of 5 s the pauses run 5, 10, 20, 40, then 60 s.
const maxBackoffFactor = 12

// Options tunes a Cache. Zero or negative durations mean the default.
// Durations that concern token lifetimes, blocks and cooldowns are read on
// the Now clock; the lock lease and the wait for another process are real
// time, because Redis and other processes run on real time.
type Options struct {
	// KeyPrefix starts every Redis key. Default DefaultKeyPrefix. It must
	// not contain "{" or "}" (the account part is a cluster hash tag).
	KeyPrefix string
	// Endpoint names the token endpoint the Fetcher calls, such as
	// "stable_token" or "token"; the two issue separate tokens, so it is
	// part of the key. Empty: take it from the Fetcher's Endpoint method
	// (*wechat.TokenFetcher has one), else key by appid alone.
	Endpoint string
	// RefreshMargin is how long before expiry a token is refreshed. The
	// margin applied is min(RefreshMargin, lifetime/4), where lifetime is
	// what the token had left when fetched, so short test lifetimes work.
	// Refresh starts when the margin is reached; the token is served for
	// half the margin more, then never again. Default 5 min.
	RefreshMargin time.Duration
	// LockLease is how long the refresh lock lives if its holder dies, and
	// the timeout of one fetch. Default 10 s.
	LockLease time.Duration
	// WaitTimeout bounds how long a refresh waits for another process
	// that holds the lock. Default 5 s.
	WaitTimeout time.Duration
	// BlockFor is how long fetches stop after a misconfiguration errcode.
	// Default 5 min.
	BlockFor time.Duration
	// FetchErrorBackoff is the pause after a transient fetch failure,
	// doubled on each consecutive failure up to 12 times its value.
	// Default 5 s.
	FetchErrorBackoff time.Duration
	// MinFetchInterval is the least time between two fetches by one
	// process while Redis is failing. Default 30 s.
	MinFetchInterval time.Duration
	// ReportInterval is the least time between two redis_error events.
	// Default 30 s.
	ReportInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// OnEvent, if set, receives events to log. It is called synchronously
	// from whichever goroutine saw the event, so it must be quick; it may
	// call Stats.
	OnEvent func(Event)
}

func (o Options) withDefaults() Options {
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	durationDefault(&o.RefreshMargin, DefaultRefreshMargin)
	durationDefault(&o.LockLease, DefaultLockLease)
	durationDefault(&o.WaitTimeout, DefaultWaitTimeout)
	durationDefault(&o.BlockFor, DefaultBlockFor)
	durationDefault(&o.FetchErrorBackoff, DefaultFetchErrorBackoff)
	durationDefault(&o.MinFetchInterval, DefaultMinFetchInterval)
	durationDefault(&o.ReportInterval, DefaultReportInterval)
	return o
}

func durationDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Cache is a wechat.TokenSource that shares one access token per account
// and endpoint among all processes through Redis. See the package
// documentation for the protocol. A Cache is safe for concurrent use and
// needs no closing: its only goroutines are refreshes, which end within
// LockLease+WaitTimeout.
type Cache struct {
	fetcher  wechat.Fetcher
	o        Options
	appID    string
	endpoint string
	store    *store

	cur      atomic.Pointer[entry]
	rejected atomic.Pointer[string] // the token last passed to Invalidate
	nextTry  atomic.Int64           // Now-clock unix ns; no refresh-ahead before
	flying   atomic.Bool            // a refresh runs; spares callers the mutex

	mu         sync.Mutex
	flight     *flight
	blocked    *BlockedError
	cooldown   *CooldownError
	failures   int       // consecutive transient fetch failures seen
	nextAlone  time.Time // earliest fetch while Redis is failing
	lastReport time.Time
	unreported int

	stats counters
}

var _ wechat.TokenSource = (*Cache)(nil)

// New returns a Cache for f's account that stores its state in rdb.
func New(rdb redis.UniversalClient, f wechat.Fetcher, o Options) *Cache {
	o = o.withDefaults()
	c := &Cache{fetcher: f, o: o, appID: f.AppID(), endpoint: o.Endpoint}
	if c.endpoint == "" {
		c.endpoint = endpointOf(f)
	}

	account := c.appID
	if c.endpoint != "" {
		account += ":" + c.endpoint
	}
	c.store = newStore(rdb, o.KeyPrefix, account, o.LockLease)
	return c
}

// endpointer is implemented by *wechat.TokenFetcher.
type endpointer interface {
	Endpoint() wechat.TokenEndpoint
}

// endpointOf returns the endpoint kind f calls, or "" if f does not say.
func endpointOf(f wechat.Fetcher) string {
	if e, ok := f.(endpointer); ok {
		return string(e.Endpoint())
	}
	return ""
}

// Token returns a token valid now. In steady state it answers from memory
// without touching Redis. It waits only when this process has no usable
// token; then it returns ctx.Err() if ctx ends first, a *BlockedError or
// *CooldownError when fetches are stopped, or the fetch error.
func (c *Cache) Token(ctx context.Context) (string, error) {
	now := c.o.Now()
	if e := c.cur.Load(); e != nil && now.Before(e.refreshAt) {
		c.stats.memoryHits.Add(1)
		return e.tok.Value, nil
	}
	return c.slowToken(ctx, now)
}

func (c *Cache) slowToken(ctx context.Context, now time.Time) (string, error) {
	if e := c.cur.Load(); e != nil && now.Before(e.hardAt) {
		c.stats.memoryHits.Add(1)
		c.refreshAhead(now)
		return e.tok.Value, nil
	}

	if err := c.paused(now); err != nil {
		if e := c.cur.Load(); e != nil && e.tok.ValidAt(now, 0) {
			c.stats.memoryHits.Add(1)
			return e.tok.Value, nil
		}
		return "", err
	}

	c.stats.waits.Add(1)
	return c.await(ctx, c.join())
}

// refreshAhead starts a background refresh unless one runs or the last
// one failed too recently.
func (c *Cache) refreshAhead(now time.Time) {
	if c.flying.Load() || now.UnixNano() < c.nextTry.Load() {
		return
	}
	c.join()
}

// paused returns the block or cooldown in force, if any.
func (c *Cache) paused(now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()

	if c.blocked != nil && now.Before(c.blocked.Until) {
		return c.blocked
	}
	if c.cooldown != nil && now.Before(c.cooldown.Until) {
		return c.cooldown
	}
	return nil
}

// Invalidate drops token, which WeChat rejected, from memory and from
// Redis, in each place only if it is still the token held there. Repeated
// calls for the same token cost no Redis command after the first.
func (c *Cache) Invalidate(ctx context.Context, token string) {
	if token == "" {
		return
	}
	dropped := false
	if e := c.cur.Load(); e != nil && e.tok.Value == token {
		dropped = c.cur.CompareAndSwap(e, nil)
	}
	if !c.markRejected(token) && !dropped {
		return
	}

	inRedis, err := c.store.invalidate(ctx, token)
	if err != nil && ctx.Err() == nil {
		c.redisFailed(err)
	}
	if dropped || inRedis {
		c.stats.invalidations.Add(1)
		c.emit(Event{Kind: EventInvalidated, Fingerprint: wechat.Fingerprint(token)})
	}
}

// markRejected records token as rejected and reports whether it was not
// already the last rejected token.
func (c *Cache) markRejected(token string) bool {
	for {
		old := c.rejected.Load()
		if old != nil && *old == token {
			return false
		}
		if c.rejected.CompareAndSwap(old, &token) {
			return true
		}
	}
}

func (c *Cache) isRejected(token string) bool {
	r := c.rejected.Load()
	return r != nil && *r == token
}

// Stats counts what a Cache has done since New.
type Stats struct {
	// MemoryHits counts Token calls answered from memory without waiting.
	MemoryHits uint64
	// Waits counts Token calls that had no usable token in memory and
	// waited for a refresh.
	Waits uint64
	// RedisReads counts reads of the shared record (one MGET each).
	RedisReads uint64
	// RedisErrors counts failed Redis commands.
	RedisErrors uint64
	// Fetches counts calls to the Fetcher; FetchErrors those that failed.
	Fetches     uint64
	FetchErrors uint64
	// LockWaits counts refreshes that found another process holding the
	// lock and waited for its token.
	LockWaits uint64
	// Invalidations counts Invalidate calls that dropped a token.
	Invalidations uint64
}

type counters struct {
	memoryHits, waits, redisReads, redisErrors     atomic.Uint64
	fetches, fetchErrors, lockWaits, invalidations atomic.Uint64
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	s := &c.stats
	return Stats{
		MemoryHits:    s.memoryHits.Load(),
		Waits:         s.waits.Load(),
		RedisReads:    s.redisReads.Load(),
		RedisErrors:   s.redisErrors.Load(),
		Fetches:       s.fetches.Load(),
		FetchErrors:   s.fetchErrors.Load(),
		LockWaits:     s.lockWaits.Load(),
		Invalidations: s.invalidations.Load(),
	}
}

// entry is a token as this process holds it, with the two moments that
// govern its use.
type entry struct {
	tok       wechat.Token
	refreshAt time.Time // from here, refresh in the background
	hardAt    time.Time // from here, never serve it
}

// newEntry applies margin = min(configured, lifetime/4), lifetime being
// what the token had left at fetchedAt.
func newEntry(tok wechat.Token, fetchedAt time.Time, margin time.Duration) *entry {
	m := min(margin, tok.ExpiresAt.Sub(fetchedAt)/4)
	m = max(m, 0)
	return &entry{
		tok:       tok,
		refreshAt: tok.ExpiresAt.Add(-m),
		hardAt:    tok.ExpiresAt.Add(-m / 2),
	}
}

func (e *entry) fresh(now time.Time) bool  { return e != nil && now.Before(e.refreshAt) }
func (e *entry) usable(now time.Time) bool { return e != nil && now.Before(e.hardAt) }
