package tokencache

import "time"

// EventKind names what an Event reports.
type EventKind string

// The kinds of Event. Each is reported by the process it happened in.
const (
	// EventRefreshed: this process fetched a new token and stored it.
	EventRefreshed EventKind = "refreshed"
	// EventRedisError: a Redis command failed. Reported at most once per
	// Options.ReportInterval; Event.Count says how many failed since the
	// last report.
	EventRedisError EventKind = "redis_error"
	// EventBlocked: the token endpoint answered a misconfiguration errcode
	// and fetches stop until Event.Until. Only the process whose fetch got
	// the answer reports it, once per block.
	EventBlocked EventKind = "blocked"
	// EventFetchFailed: a fetch failed transiently; fetches pause until
	// Event.Until.
	EventFetchFailed EventKind = "fetch_failed"
	// EventInvalidated: Invalidate dropped a rejected token from memory or
	// from Redis.
	EventInvalidated EventKind = "invalidated"
)

// Event is something an operator may want logged. It never holds a token
// or a secret: tokens appear only as wechat.Fingerprint labels, and Err
// comes from the Fetcher or from Redis, whose errors hold neither.
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// AppID and Endpoint name the account and token endpoint concerned;
	// Endpoint is empty when the Fetcher does not say.
	AppID    string
	Endpoint string
	// Code is the WeChat errcode involved, 0 when there is none.
	Code int
	// Fingerprint labels the token refreshed or invalidated.
	Fingerprint string
	// ExpiresAt is when the refreshed token expires.
	ExpiresAt time.Time
	// Until is when a block or cooldown ends.
	Until time.Time
	// Count is, for EventRedisError, the number of Redis failures since
	// the previous report, this one included.
	Count int
	// Err is the failure behind a redis_error, blocked or fetch_failed
	// event.
	Err error
}

// emit hands ev to Options.OnEvent. It is never called with c.mu held.
func (c *Cache) emit(ev Event) {
	if c.o.OnEvent == nil {
		return
	}
	ev.AppID = c.appID
	ev.Endpoint = c.endpoint
	c.o.OnEvent(ev)
}

// redisFailed counts a Redis failure and reports it, at most once per
// ReportInterval.
func (c *Cache) redisFailed(err error) {
	c.stats.redisErrors.Add(1)
	now := c.o.Now()

	c.mu.Lock()
	c.unreported++
	n := c.unreported
	due := c.lastReport.IsZero() || now.Sub(c.lastReport) >= c.o.ReportInterval
	if due {
		c.lastReport = now
		c.unreported = 0
	}
	c.mu.Unlock()

	if due {
		c.emit(Event{Kind: EventRedisError, Count: n, Err: err})
	}
}
