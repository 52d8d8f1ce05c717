package tokencache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/wxnotify/wxnotify/wechat"
)

// Polling while another process holds the lock starts at pollFirst and
// doubles, with jitter, up to pollMax.
const (
	pollFirst = 10 * time.Millisecond
	pollMax   = 250 * time.Millisecond
)

var errNoToken = errors.New("refresh ended without a usable token")

// flight is one refresh in this process. Every caller that needs a token
// while it runs waits for the same flight: a hand-written singleflight.
type flight struct {
	done chan struct{}
	err  error // set before done is closed
}

// join returns the running flight, starting one if none runs.
func (c *Cache) join() *flight {
	c.mu.Lock()
	defer c.mu.Unlock()

	if c.flight == nil {
		c.flight = &flight{done: make(chan struct{})}
		c.flying.Store(true)
		go c.run(c.flight)
	}
	return c.flight
}

// await waits for f and returns the token it left in memory.
func (c *Cache) await(ctx context.Context, f *flight) (string, error) {
	select {
	case <-f.done:
		return c.outcome(f.err)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// outcome picks what a waiter gets once a flight ends: a usable token, or,
// when the refresh failed, the memory copy as long as it has not expired.
func (c *Cache) outcome(err error) (string, error) {
	now := c.o.Now()
	e := c.cur.Load()
	if e.usable(now) || (err != nil && e != nil && e.tok.ValidAt(now, 0)) {
		return e.tok.Value, nil
	}
	if err == nil {
		err = errNoToken
	}
	return "", err
}

// run performs f with a context of its own, so a caller that gives up does
// not fail the others.
func (c *Cache) run(f *flight) {
	ctx, cancel := context.WithTimeout(context.Background(), c.o.LockLease+c.o.WaitTimeout)
	defer cancel()

	err := c.refresh(ctx)
	c.land()
	f.err = err
	close(f.done)
}

// land ends the flight. If no fresh token came of it, refresh-ahead pauses
// for a moment so that callers in the margin do not start one per call.
func (c *Cache) land() {
	now := c.o.Now()
	if e := c.cur.Load(); e != nil && !e.fresh(now) {
		gap := min(time.Second, e.hardAt.Sub(e.refreshAt)/4)
		c.nextTry.Store(now.Add(gap).UnixNano())
	}

	c.mu.Lock()
	c.flight = nil
	c.flying.Store(false)
	c.mu.Unlock()
}

// refresh brings a fresh token into memory: from Redis if another process
// has stored one, else by fetching under the lock.
func (c *Cache) refresh(ctx context.Context) error {
	r, err := c.read(ctx)
	if err != nil {
		return c.withoutRedis(ctx, err)
	}
	if done, err := c.settle(r); done {
		return err
	}
	return c.refreshShared(ctx)
}

func (c *Cache) read(ctx context.Context) (record, error) {
	c.stats.redisReads.Add(1)
	return c.store.read(ctx)
}

// settle acts on what Redis holds. It reports done when nothing is left
// to do: a block or cooldown is in force (err says which), or a fresh
// token was adopted.
func (c *Cache) settle(r record) (bool, error) {
	now := c.o.Now()
	if err := c.applyHold(r.hold, now); err != nil {
		return true, err
	}
	if !r.hasToken || c.isRejected(r.token.Value) {
		return false, nil
	}

	e := newEntry(r.token, r.fetchedAt, c.o.RefreshMargin)
	if !e.usable(now) {
		return false, nil
	}
	c.adopt(e)
	return e.fresh(now), nil
}

// applyHold makes a block or cooldown recorded in Redis this process's own
// and returns it while it is in force.
func (c *Cache) applyHold(h *hold, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()

	if h == nil {
		c.failures = 0
		return nil
	}
	c.failures = max(c.failures, h.Failures)
	if !now.Before(h.until()) {
		return nil
	}
	if we := h.wechatError(); we != nil && h.Kind == holdBlocked {
		c.blocked = &BlockedError{AppID: c.appID, Cause: we, Until: h.until()}
		return c.blocked
	}
	c.cooldown = &CooldownError{AppID: c.appID, Cause: h.cause(), Until: h.until()}
	return c.cooldown
}

// adopt makes e the memory copy unless the copy is usable and lasts
// longer, and unless e was rejected meanwhile.
func (c *Cache) adopt(e *entry) {
	old := c.cur.Load()
	if old.usable(c.o.Now()) && old.tok.ExpiresAt.After(e.tok.ExpiresAt) {
		return
	}
	c.cur.Store(e)
	if c.isRejected(e.tok.Value) {
		c.cur.CompareAndSwap(e, nil)
	}
}

// refreshShared takes the lock and fetches, or waits for the process that
// holds it, for at most WaitTimeout.
func (c *Cache) refreshShared(ctx context.Context) error {
	deadline := time.Now().Add(c.o.WaitTimeout)
	for {
		owner, err := c.store.acquire(ctx)
		if err != nil {
			return c.withoutRedis(ctx, err)
		}
		if owner != "" {
			return c.refreshHolding(ctx, owner)
		}

		c.stats.lockWaits.Add(1)
		if done, err := c.awaitHolder(ctx, deadline); done {
			return err
		}
	}
}

// awaitHolder polls Redis until the lock holder publishes a token or a
// hold, or the lock goes away; done is false in the last case, so the
// caller tries to take the lock itself.
func (c *Cache) awaitHolder(ctx context.Context, deadline time.Time) (bool, error) {
	delay := pollFirst
	for {
		if err := sleepUntil(ctx, jitter(delay), deadline); err != nil {
			return true, fmt.Errorf("refresh token for %s: %w", c.appID, err)
		}
		r, err := c.read(ctx)
		if err != nil {
			return true, c.withoutRedis(ctx, err)
		}
		if done, err := c.settle(r); done {
			return true, err
		}
		if !r.locked {
			return false, nil
		}
		delay = min(2*delay, pollMax)
	}
}

// jitter returns a duration between d/2 and d, so waiting processes do
// not poll in step.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// sleepUntil sleeps for d, or fails with ErrWaitTimeout if that would pass
// deadline, or with ctx's error.
func sleepUntil(ctx context.Context, d time.Duration, deadline time.Time) error {
	if time.Until(deadline) < d {
		return ErrWaitTimeout
	}
	t := time.NewTimer(d)
	defer t.Stop()

	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refreshHolding runs with the lock held: it checks Redis once more (the
// previous holder may have just finished) and otherwise fetches. Every
// path releases the lock.
func (c *Cache) refreshHolding(ctx context.Context, owner string) error {
	r, err := c.read(ctx)
	if err != nil {
		c.release(ctx, owner)
		return c.withoutRedis(ctx, err)
	}
	if done, err := c.settle(r); done {
		c.release(ctx, owner)
		return err
	}

	tok, err := c.fetch(ctx)
	if err != nil {
		return c.fetchFailed(ctx, err, owner)
	}
	return c.fetched(ctx, tok, owner)
}

func (c *Cache) release(ctx context.Context, owner string) {
	if err := c.store.release(ctx, owner); err != nil {
		c.redisFailed(err)
	}
}

// withoutRedis continues a refresh after a Redis failure. The memory copy
// serves while it is usable; otherwise this process fetches on its own,
// at most once per MinFetchInterval.
func (c *Cache) withoutRedis(ctx context.Context, rerr error) error {
	c.redisFailed(rerr)
	now := c.o.Now()
	if c.cur.Load().usable(now) {
		return nil
	}
	if err := c.claimLoneFetch(now, rerr); err != nil {
		return err
	}

	tok, err := c.fetch(ctx)
	if err != nil {
		return c.fetchFailed(ctx, err, "")
	}
	return c.fetched(ctx, tok, "")
}

// claimLoneFetch allows one fetch per MinFetchInterval while Redis fails;
// in between it starts a cooldown that ends when the next fetch is due.
func (c *Cache) claimLoneFetch(now time.Time, rerr error) error {
	c.mu.Lock()
	defer c.mu.Unlock()

	if now.Before(c.nextAlone) {
		c.cooldown = &CooldownError{AppID: c.appID, Cause: rerr, Until: c.nextAlone}
		return c.cooldown
	}
	c.nextAlone = now.Add(c.o.MinFetchInterval)
	return nil
}

// fetch makes one call to the Fetcher, bounded by the lock's lease.
func (c *Cache) fetch(ctx context.Context) (wechat.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.LockLease)
	defer cancel()

	c.stats.fetches.Add(1)
	tok, err := c.fetcher.FetchToken(ctx)
	if err == nil && !tok.ValidAt(c.o.Now(), 0) {
		err = errors.New("fetcher returned an empty or expired token")
	}
	if err != nil {
		c.stats.fetchErrors.Add(1)
	}
	return tok, err
}

// fetched adopts and publishes a new token and ends any pause.
func (c *Cache) fetched(ctx context.Context, tok wechat.Token, owner string) error {
	now := c.o.Now()
	c.rejected.CompareAndSwap(c.rejectedPtr(tok.Value), nil)
	c.adopt(newEntry(tok, now, c.o.RefreshMargin))

	c.mu.Lock()
	c.failures, c.blocked, c.cooldown = 0, nil, nil
	c.mu.Unlock()

	if err := c.store.save(ctx, tok, now, owner); err != nil {
		c.redisFailed(err)
	}
	c.emit(Event{
		Kind:        EventRefreshed,
		Fingerprint: wechat.Fingerprint(tok.Value),
		ExpiresAt:   tok.ExpiresAt,
	})
	return nil
}

// rejectedPtr returns the rejected pointer if it holds token, else nil,
// so that a fetch clears a rejection only of the token it brought back.
func (c *Cache) rejectedPtr(token string) *string {
	if r := c.rejected.Load(); r != nil && *r == token {
		return r
	}
	return nil
}

// fetchFailed blocks fetches after a misconfiguration errcode, or starts a
// cooldown after a transient failure, here and in Redis.
func (c *Cache) fetchFailed(ctx context.Context, err error, owner string) error {
	now := c.o.Now()
	if we, ok := blockingError(err); ok {
		return c.block(ctx, we, now, owner)
	}

	until, n := c.coolDown(err, now)
	keep := until.Sub(now) + maxBackoffFactor*c.o.FetchErrorBackoff
	c.putHold(ctx, newHold(holdCooldown, err, until, n), keep, owner)

	code, _ := wechat.Code(err)
	c.emit(Event{Kind: EventFetchFailed, Code: code, Until: until, Err: err})
	return fmt.Errorf("fetch token for %s: %w", c.appID, err)
}

func (c *Cache) block(ctx context.Context, we *wechat.Error, now time.Time, owner string) error {
	b := &BlockedError{AppID: c.appID, Cause: we, Until: now.Add(c.o.BlockFor)}
	c.mu.Lock()
	c.blocked = b
	c.mu.Unlock()

	c.putHold(ctx, newHold(holdBlocked, we, b.Until, 0), c.o.BlockFor, owner)
	c.emit(Event{Kind: EventBlocked, Code: we.Code, Until: b.Until, Err: we})
	return b
}

// coolDown counts a transient failure and starts a pause that doubles with
// each consecutive failure, up to maxBackoffFactor times the base.
func (c *Cache) coolDown(err error, now time.Time) (time.Time, int) {
	c.mu.Lock()
	defer c.mu.Unlock()

	c.failures++
	base := c.o.FetchErrorBackoff
	d := min(base<<min(c.failures-1, 4), maxBackoffFactor*base)
	c.cooldown = &CooldownError{AppID: c.appID, Cause: err, Until: now.Add(d)}
	return c.cooldown.Until, c.failures
}

func (c *Cache) putHold(ctx context.Context, h hold, ttl time.Duration, owner string) {
	if err := c.store.putHold(ctx, h, ttl, owner); err != nil {
		c.redisFailed(err)
	}
}
