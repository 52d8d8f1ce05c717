package tokencache

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxnotify/wxnotify/wechat"
)

// store is the Redis half of the protocol: three keys per account and the
// scripts that change them. The keys share a hash tag, so scripts and MGET
// work on Redis Cluster too.
type store struct {
	rdb      redis.UniversalClient
	tokenKey string // "1|<expires ms>|<fetched ms>|<token>", PX = time left
	holdKey  string // JSON hold record: a block or a cooldown
	lockKey  string // owner id of the refresh lock, PX = lease
	lease    time.Duration
}

func newStore(rdb redis.UniversalClient, prefix, account string, lease time.Duration) *store {
	base := prefix + "{" + account + "}"
	return &store{
		rdb:      rdb,
		tokenKey: base,
		holdKey:  base + ":hold",
		lockKey:  base + ":lock",
		lease:    lease,
	}
}

// record is what Redis holds for an account, read in one round trip.
type record struct {
	token     wechat.Token
	fetchedAt time.Time
	hasToken  bool
	hold      *hold
	locked    bool
}

// read fetches the token, the hold and the lock's presence with one MGET.
// Values that do not parse count as absent.
func (s *store) read(ctx context.Context) (record, error) {
	vals, err := s.rdb.MGet(ctx, s.tokenKey, s.holdKey, s.lockKey).Result()
	if err != nil {
		return record{}, fmt.Errorf("read shared token: %w", err)
	}
	if len(vals) != 3 {
		return record{}, fmt.Errorf("read shared token: %d values for 3 keys", len(vals))
	}

	var r record
	if v, ok := vals[0].(string); ok {
		r.token, r.fetchedAt, r.hasToken = decodeToken(v)
	}
	if v, ok := vals[1].(string); ok {
		r.hold = decodeHold(v)
	}
	r.locked = vals[2] != nil
	return r, nil
}

func encodeToken(t wechat.Token, fetchedAt time.Time) string {
	return "1|" + strconv.FormatInt(t.ExpiresAt.UnixMilli(), 10) +
		"|" + strconv.FormatInt(fetchedAt.UnixMilli(), 10) + "|" + t.Value
}

func decodeToken(v string) (wechat.Token, time.Time, bool) {
	parts := strings.SplitN(v, "|", 4)
	if len(parts) != 4 || parts[0] != "1" || parts[3] == "" {
		return wechat.Token{}, time.Time{}, false
	}
	exp, err1 := strconv.ParseInt(parts[1], 10, 64)
	fetched, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return wechat.Token{}, time.Time{}, false
	}
	t := wechat.Token{Value: parts[3], ExpiresAt: time.UnixMilli(exp)}
	return t, time.UnixMilli(fetched), true
}

// Kinds of hold record.
const (
	holdBlocked  = "blocked"
	holdCooldown = "cooldown"
)

// hold is the shared record of a failed fetch. It holds WeChat's errcode
// and errmsg (which never contain the secret) and, for other failures,
// only a short classification, never the error text.
type hold struct {
	Kind     string `json:"kind"`
	Code     int    `json:"code,omitempty"`
	Message  string `json:"msg,omitempty"`
	RID      string `json:"rid,omitempty"`
	Failure  string `json:"failure,omitempty"`
	UntilMS  int64  `json:"until"`
	Failures int    `json:"failures,omitempty"`
}

func decodeHold(v string) *hold {
	var h hold
	if json.Unmarshal([]byte(v), &h) != nil || h.UntilMS == 0 {
		return nil
	}
	return &h
}

func (h *hold) until() time.Time { return time.UnixMilli(h.UntilMS) }

// wechatError rebuilds the WeChat error the hold records, or nil.
func (h *hold) wechatError() *wechat.Error {
	if h.Code == 0 {
		return nil
	}
	return &wechat.Error{Op: "fetch token", Code: h.Code, Message: h.Message, RID: h.RID}
}

// cause describes the failure for a process that did not see it.
func (h *hold) cause() error {
	if we := h.wechatError(); we != nil {
		return we
	}
	return fmt.Errorf("token fetch failed in another process (%s)", h.Failure)
}

// newHold records err; only its classification leaves the process.
func newHold(kind string, err error, until time.Time, failures int) hold {
	h := hold{Kind: kind, UntilMS: until.UnixMilli(), Failures: failures}
	var we *wechat.Error
	if errors.As(err, &we) {
		h.Code, h.Message, h.RID = we.Code, we.Message, we.RID
	}
	h.Failure = classify(err)
	return h
}

func classify(err error) string {
	var (
		se *wechat.StatusError
		te *wechat.TransportError
		de *wechat.DecodeError
		we *wechat.Error
	)
	switch {
	case errors.As(err, &we):
		return "errcode " + strconv.Itoa(we.Code)
	case errors.As(err, &se):
		return "http status " + strconv.Itoa(se.StatusCode)
	case errors.As(err, &te):
		return "transport"
	case errors.As(err, &de):
		return "decode"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "other"
}

// acquire tries to take the refresh lock and returns the owner id, or ""
// when another process holds it.
func (s *store) acquire(ctx context.Context) (string, error) {
	owner := rand.Text()
	ok, err := s.rdb.SetNX(ctx, s.lockKey, owner, s.lease).Result()
	if err != nil {
		return "", fmt.Errorf("take refresh lock: %w", err)
	}
	if !ok {
		return "", nil
	}
	return owner, nil
}

// releaseScript deletes the lock only if owner still holds it, so a holder
// whose lease ran out cannot free a lock someone else has since taken.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0`)

func (s *store) release(ctx context.Context, owner string) error {
	if err := releaseScript.Run(ctx, s.rdb, []string{s.lockKey}, owner).Err(); err != nil {
		return fmt.Errorf("release refresh lock: %w", err)
	}
	return nil
}

// saveScript stores a fresh token, clears any hold and releases the lock
// if ARGV[3] still owns it. KEYS: token, hold, lock.
var saveScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
if ARGV[3] ~= '' and redis.call('GET', KEYS[3]) == ARGV[3] then
	redis.call('DEL', KEYS[3])
end
return 1`)

// save publishes t. owner is "" when the token was fetched without the
// lock (Redis was failing).
func (s *store) save(ctx context.Context, t wechat.Token, fetchedAt time.Time, owner string) error {
	ttl := t.ExpiresAt.Sub(fetchedAt).Milliseconds()
	if ttl <= 0 && owner == "" {
		return nil
	}
	if ttl <= 0 {
		return s.release(ctx, owner)
	}
	keys := []string{s.tokenKey, s.holdKey, s.lockKey}
	err := saveScript.Run(ctx, s.rdb, keys, encodeToken(t, fetchedAt), ttl, owner).Err()
	if err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	return nil
}

// holdScript stores a hold record and releases the lock if ARGV[3] still
// owns it. KEYS: hold, lock.
var holdScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) == ARGV[3] then
	redis.call('DEL', KEYS[2])
end
return 1`)

// putHold stores h for ttl (which may outlast h.Until, so the failure
// count survives the cooldown) and releases the lock.
func (s *store) putHold(ctx context.Context, h hold, ttl time.Duration, owner string) error {
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("encode hold: %w", err)
	}
	keys := []string{s.holdKey, s.lockKey}
	ms := max(ttl.Milliseconds(), 1)
	if err := holdScript.Run(ctx, s.rdb, keys, string(b), ms, owner).Err(); err != nil {
		return fmt.Errorf("store hold: %w", err)
	}
	return nil
}

// invalidateScript deletes the stored token only if it is ARGV[1]. The
// prefix fields are digits, so the capture is exactly the token.
var invalidateScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
	return 0
end
if string.match(v, '^1|%d+|%d+|(.*)$') == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0`)

// invalidate drops the stored token if it is token and reports whether it
// did.
func (s *store) invalidate(ctx context.Context, token string) (bool, error) {
	n, err := invalidateScript.Run(ctx, s.rdb, []string{s.tokenKey}, token).Int()
	if err != nil {
		return false, fmt.Errorf("invalidate shared token: %w", err)
	}
	return n == 1, nil
}
