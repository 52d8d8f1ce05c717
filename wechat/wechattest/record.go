package wechattest

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/wechat"
)

// keptSeconds bounds Stats.PerSecond: two days of seconds with deliveries.
const keptSeconds = 2 * 24 * 60 * 60

// Delivery is one template message the server accepted and "sent".
type Delivery struct {
	// AppID is the account whose access_token the send used.
	AppID       string                     `json:"appid"`
	ToUser      string                     `json:"touser"`
	TemplateID  string                     `json:"template_id"`
	ClientMsgID string                     `json:"client_msg_id,omitempty"`
	MsgID       int64                      `json:"msgid"`
	URL         string                     `json:"url,omitempty"`
	MiniProgram *wechat.MiniProgram        `json:"miniprogram,omitempty"`
	Data        map[string]wechat.DataItem `json:"data"`
	// At is the server's clock when the message was delivered.
	At time.Time `json:"at"`
}

// Key returns the pair WeChat deduplicates the delivery on.
func (d Delivery) Key() DeliveryKey {
	return DeliveryKey{ToUser: d.ToUser, ClientMsgID: d.ClientMsgID}
}

// DeliveryKey is a (touser, client_msg_id) pair. In JSON it is the text
// "touser/client_msg_id"; an openid never holds a "/".
type DeliveryKey struct {
	ToUser      string
	ClientMsgID string
}

// MarshalText writes k as "touser/client_msg_id".
func (k DeliveryKey) MarshalText() ([]byte, error) {
	return []byte(k.ToUser + "/" + k.ClientMsgID), nil
}

// UnmarshalText reads the form MarshalText writes.
func (k *DeliveryKey) UnmarshalText(b []byte) error {
	k.ToUser, k.ClientMsgID, _ = strings.Cut(string(b), "/")
	return nil
}

// Stats counts what the server saw since it started or was last Reset.
type Stats struct {
	// TokenCalls counts calls to both token endpoints, failed ones too.
	TokenCalls        int `json:"token_calls"`
	StableTokenCalls  int `json:"stable_token_calls"`
	ClassicTokenCalls int `json:"classic_token_calls"`
	// ForceRefreshes counts stable_token calls with force_refresh=true.
	ForceRefreshes int `json:"force_refreshes"`
	// TokensIssued counts new tokens; a stable_token call that returns the
	// current token issues none.
	TokensIssued int `json:"tokens_issued"`
	// TokenErrcodes counts the errcodes the token endpoints answered.
	TokenErrcodes map[int]int `json:"token_errcodes"`

	// SendAttempts counts every request to the template send endpoint.
	SendAttempts int `json:"send_attempts"`
	// Deliveries counts messages delivered: duplicates are not counted.
	Deliveries int `json:"deliveries"`
	// DuplicatesSuppressed counts sends answered with the msgid of an
	// earlier delivery of the same (touser, client_msg_id).
	DuplicatesSuppressed int `json:"duplicates_suppressed"`
	// Errcodes counts the non-zero errcodes sends were answered with.
	Errcodes map[int]int `json:"errcodes"`
	// HTTP5xx counts sends answered with an injected HTTP 5xx.
	HTTP5xx int `json:"http_5xx"`
	// Abandoned counts sends whose client left during Latency or a
	// SlowBefore delay, so that nothing was processed.
	Abandoned int `json:"abandoned"`

	// PerSecond maps a unix second of the server's clock to the
	// deliveries in it (the last two days of seconds are kept).
	PerSecond map[int64]int `json:"per_second"`
	// PerKey maps (touser, client_msg_id) to its deliveries among those
	// still kept (see Config.MaxDeliveries); sends without client_msg_id
	// count under an empty one.
	PerKey map[DeliveryKey]int `json:"per_key"`
}

// PeakSecond returns the most deliveries in one calendar second.
func (st Stats) PeakSecond() int {
	peak := 0
	for _, n := range st.PerSecond {
		peak = max(peak, n)
	}
	return peak
}

// MaxInWindow returns the most deliveries whose At falls within any
// window-long stretch [t, t+window), for checking a sliding rate limit.
func MaxInWindow(ds []Delivery, window time.Duration) int {
	times := make([]time.Time, len(ds))
	for i, d := range ds {
		times[i] = d.At
	}
	slices.SortFunc(times, time.Time.Compare)

	most, lo := 0, 0
	for hi, t := range times {
		for t.Sub(times[lo]) >= window {
			lo++
		}
		most = max(most, hi-lo+1)
	}
	return most
}

// recorder keeps the latest deliveries in a ring and the counts derived
// from them. The server's mutex guards it.
type recorder struct {
	ring      []Delivery
	next      int // where the next delivery goes once the ring is full
	perKey    map[DeliveryKey]int
	perSecond map[int64]int
	seconds   fifo[int64] // the keys of perSecond, oldest first
}

func newRecorder(capacity int) *recorder {
	return &recorder{
		ring:      make([]Delivery, 0, min(capacity, 4096)),
		perKey:    make(map[DeliveryKey]int),
		perSecond: make(map[int64]int),
	}
}

func (r *recorder) add(d Delivery, capacity int) {
	r.perKey[d.Key()]++
	r.countSecond(d.At.Unix())
	if len(r.ring) < capacity {
		r.ring = append(r.ring, d)
		return
	}

	old := r.ring[r.next].Key()
	if r.perKey[old]--; r.perKey[old] <= 0 {
		delete(r.perKey, old)
	}
	r.ring[r.next] = d
	r.next = (r.next + 1) % capacity
}

func (r *recorder) countSecond(sec int64) {
	if _, seen := r.perSecond[sec]; !seen {
		r.seconds.push(sec)
	}
	r.perSecond[sec]++

	if r.seconds.len() > keptSeconds {
		delete(r.perSecond, r.seconds.front())
		r.seconds.pop()
	}
}

// deliveries returns the kept deliveries oldest first, at most limit of
// the latest ones when limit is positive. Data maps are copied.
func (r *recorder) deliveries(limit int) []Delivery {
	ordered := slices.Concat(r.ring[r.next:], r.ring[:r.next])
	if limit > 0 && len(ordered) > limit {
		ordered = ordered[len(ordered)-limit:]
	}
	for i := range ordered {
		ordered[i].Data = maps.Clone(ordered[i].Data)
	}
	return ordered
}

// dedupe remembers the msgid of each (touser, client_msg_id) delivered
// within the window. The server's mutex guards it.
type dedupe struct {
	window time.Duration
	seen   map[DeliveryKey]remembered
	order  fifo[remembered] // oldest first, for expiry
}

type remembered struct {
	key   DeliveryKey
	msgID int64
	at    time.Time
}

func newDedupe(window time.Duration) *dedupe {
	return &dedupe{window: window, seen: make(map[DeliveryKey]remembered)}
}

// lookup returns the msgid k was delivered with within the window.
func (d *dedupe) lookup(k DeliveryKey, now time.Time) (int64, bool) {
	r, ok := d.seen[k]
	if !ok || now.Sub(r.at) >= d.window {
		return 0, false
	}
	return r.msgID, true
}

func (d *dedupe) remember(k DeliveryKey, msgID int64, now time.Time) {
	d.expire(now)

	r := remembered{key: k, msgID: msgID, at: now}
	d.seen[k] = r
	d.order.push(r)
}

// expire forgets the pairs older than the window. A pair delivered again
// after expiry has a newer entry in seen, which is kept.
func (d *dedupe) expire(now time.Time) {
	for d.order.len() > 0 {
		r := d.order.front()
		if now.Sub(r.at) < d.window {
			return
		}
		if d.seen[r.key].at.Equal(r.at) {
			delete(d.seen, r.key)
		}
		d.order.pop()
	}
}

// limiter counts deliveries in the current day, the current minute, and
// per openid in the current minute. The server's mutex guards it.
type limiter struct {
	day, minute        int64
	dayCount, minCount int
	perOpenID          map[string]int
}

func newLimiter() *limiter {
	return &limiter{perOpenID: make(map[string]int)}
}

// roll starts new counts when now is in a later (or earlier) day or
// minute than the last call.
func (l *limiter) roll(now time.Time) {
	if d := dayNumber(now); d != l.day {
		l.day, l.dayCount = d, 0
	}
	if m := minuteNumber(now); m != l.minute {
		l.minute, l.minCount = m, 0
		l.perOpenID = make(map[string]int)
	}
}

// refusal returns the quota errcode a send to openid must get, or 0.
func (l *limiter) refusal(f *activeFaults, openid string) int {
	switch {
	case f.DailyQuota > 0 && l.dayCount >= f.DailyQuota:
		return wechat.CodeDailyQuota
	case f.MinuteLimit > 0 && l.minCount >= f.MinuteLimit:
		return wechat.CodeMinuteQuota
	case f.OpenIDFrequency > 0 && l.perOpenID[openid] >= f.OpenIDFrequency:
		return wechat.CodeOpenIDTooFrequent
	}
	return 0
}

func (l *limiter) count(openid string) {
	l.dayCount++
	l.minCount++
	l.perOpenID[openid]++
}
