package worker

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/wxnotify/wxnotify/wechat"
	"github.com/wxnotify/wxnotify/wechat/tokencache"
)

// Policy defaults.
const (
	DefaultAccountStop        = 10 * time.Minute
	DefaultTemplateStop       = time.Hour
	DefaultSlowDown           = time.Minute
	DefaultRecipientDelay     = time.Minute
	DefaultQuotaProbeInterval = time.Hour
	DefaultMaxAge             = 72 * time.Hour
)

// Policy says how long each kind of wait lasts. Zero fields take their
// defaults.
type Policy struct {
	// AccountStop is how long an account stays stopped after an account
	// or configuration errcode (40164, 48001, ...) before one probe send
	// tests it again. 89506 and 89507 carry WeChat's own 24 h and 1 h.
	AccountStop time.Duration
	// TemplateStop is how long a banned template (43116) is left alone.
	TemplateStop time.Duration
	// SlowDown is how long the whole account pauses on 45011.
	SlowDown time.Duration
	// RecipientDelay is how long one message waits on 43117.
	RecipientDelay time.Duration
	// QuotaReset is when WeChat's daily quota resets. WeChat does not
	// document it; the default is 00:00 Asia/Shanghai.
	QuotaReset QuotaReset
	// QuotaProbeInterval bounds a quota wait: if the reset comes later
	// than QuotaReset says, one probe send per interval finds out.
	QuotaProbeInterval time.Duration
	// MaxAge archives a message enqueued longer ago than this: it can no
	// longer be sent in time to matter. Negative means no limit.
	MaxAge time.Duration
}

// QuotaReset is a time of day in a location.
type QuotaReset struct {
	Hour, Minute int
	Location     *time.Location
}

// shanghai is UTC+8 without a tz database: China has no daylight saving.
var shanghai = time.FixedZone("Asia/Shanghai", 8*3600)

// Next returns the first reset strictly after now.
func (q QuotaReset) Next(now time.Time) time.Time {
	loc := q.Location
	if loc == nil {
		loc = shanghai
	}
	local := now.In(loc)
	next := time.Date(local.Year(), local.Month(), local.Day(), q.Hour, q.Minute, 0, 0, loc)
	if !next.After(local) {
		next = next.AddDate(0, 0, 1)
	}
	return next
}

func (p *Policy) setDefaults() {
	durationDefault(&p.AccountStop, DefaultAccountStop)
	durationDefault(&p.TemplateStop, DefaultTemplateStop)
	durationDefault(&p.SlowDown, DefaultSlowDown)
	durationDefault(&p.RecipientDelay, DefaultRecipientDelay)
	durationDefault(&p.QuotaProbeInterval, DefaultQuotaProbeInterval)
	if p.MaxAge == 0 {
		p.MaxAge = DefaultMaxAge
	}
}

func durationDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// stopOf says what a stop decision stops (the account, or one template),
// its kind and for how long.
func (p Policy) stopOf(d Decision, templateID string, now time.Time, err error) (
	kind string, dur time.Duration, template string) {
	switch d.Action {
	case StopTemplate:
		return stopTemplate, p.TemplateStop, templateID
	case SlowAccount:
		return stopSlow, p.SlowDown, ""
	case QuotaExhausted:
		return stopQuota, min(p.QuotaReset.Next(now).Sub(now), p.QuotaProbeInterval), ""
	}

	var blocked *tokencache.BlockedError
	if errors.As(err, &blocked) && blocked.Until.After(now) {
		return stopAccount, blocked.Until.Sub(now), ""
	}
	switch d.Code {
	case wechat.CodeIPRefused24h:
		return stopAccount, 24 * time.Hour, ""
	case wechat.CodeIPRefused1h:
		return stopAccount, time.Hour, ""
	}
	return stopAccount, p.AccountStop, ""
}

// tokenWait reports how long to wait when no token could be had for a
// passing reason (the token endpoint failing, Redis down): the task waits
// without consuming a retry.
func tokenWait(err error) (time.Duration, bool) {
	var cool *tokencache.CooldownError
	if errors.As(err, &cool) {
		return max(time.Until(cool.Until), time.Second) + jitter(time.Second), true
	}
	return 0, false
}

// reportedByTokenCache is true for a token endpoint refusal: the token
// cache has already logged it once for the fleet.
func reportedByTokenCache(err error) bool {
	var blocked *tokencache.BlockedError
	return errors.As(err, &blocked)
}

// jitter is a random duration in [0, d].
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}
