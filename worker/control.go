package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The control plane: what every worker process must agree on about an
// account, kept in Redis under keys that share the account's hash tag
// (so one script can touch them all, on a cluster too):
//
//	<prefix>{<appid>}:sent:<task id>     msgid of a delivered task
//	<prefix>{<appid>}:stop               account stop, slow-down or quota wait
//	<prefix>{<appid>}:stop:tpl:<id>      stop of one banned template
//	<prefix>{<appid>}:probe              the one probe send after a stop ends
//	<prefix>{<appid>}:rate               GCRA theoretical arrival time (ms)
//
// A stop record is JSON {"kind","reason","code","until"} with until in
// unix milliseconds of the Redis clock.

// Stop kinds.
const (
	stopAccount  = "stopped"
	stopSlow     = "slowed"
	stopQuota    = "quota"
	stopTemplate = "template"
)

// stopRecord is one account or template stop.
type stopRecord struct {
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
	Code   int    `json:"code,omitempty"`
	Until  int64  `json:"until"`
}

func (r stopRecord) until() time.Time { return time.UnixMilli(r.Until) }

// admitScript decides, in one round trip, whether a task may send now:
//
//	{"sent", msgid}              a previous run delivered it
//	{"stopped", until, record}   the account or template is stopped
//	{"wait", ms}                 rate limit: come back in ms (not reserved)
//	{"ok", ms, probe}            send after sleeping ms; probe=1 if this
//	                             send tests whether a stop has ended
//
// KEYS: sent, stop, template stop, probe, rate.
// ARGV: emission interval µs (0: no limit), burst, horizon ms, probe
// lease ms.
var admitScript = redis.NewScript(`
local sent = redis.call('GET', KEYS[1])
if sent then return {'sent', sent} end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local tpl = redis.call('GET', KEYS[3])
if tpl then
  local rec = cjson.decode(tpl)
  if rec["until"] > now then return {'stopped', tostring(rec["until"]), tpl} end
end

local probe = 0
local stop = redis.call('GET', KEYS[2])
if stop then
  local rec = cjson.decode(stop)
  if rec["until"] > now then return {'stopped', tostring(rec["until"]), stop} end
  if redis.call('SET', KEYS[4], '1', 'NX', 'PX', tonumber(ARGV[4])) then
    probe = 1
  else
    return {'stopped', tostring(now + 2000), stop}
  end
end

local emission = tonumber(ARGV[1]) / 1000
if emission <= 0 then return {'ok', '0', tostring(probe)} end
local burst = tonumber(ARGV[2])
local horizon = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[5]) or '0')
if tat < now then tat = now end
local wait = tat - (burst - 1) * emission - now
if wait < 0 then wait = 0 end
if wait > horizon then
  if probe == 1 then redis.call('DEL', KEYS[4]) end
  return {'wait', tostring(math.ceil(wait))}
end
tat = tat + emission
redis.call('SET', KEYS[5], tostring(tat), 'PX', math.ceil(tat - now + burst * emission) + 1000)
return {'ok', tostring(math.ceil(wait)), tostring(probe)}
`)

// stopScript records a stop lasting ARGV[4] ms from now on the Redis
// clock, unless one that lasts longer is already there. It answers
// {1, until} when this call set the stop, so that one process logs it,
// and {0, until} with the standing stop's end otherwise.
// KEYS: stop. ARGV: kind, reason, code, duration ms.
var stopScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untilMs = now + tonumber(ARGV[4])
local cur = redis.call('GET', KEYS[1])
if cur then
  local rec = cjson.decode(cur)
  if rec["until"] >= untilMs then return {0, tostring(rec["until"])} end
end
local rec = cjson.encode({kind = ARGV[1], reason = ARGV[2], code = tonumber(ARGV[3]), ["until"] = untilMs})
redis.call('SET', KEYS[1], rec, 'PX', tonumber(ARGV[4]) + 3600000)
return {1, tostring(untilMs)}
`)

// resumeScript ends a stop after a successful probe; 1 if there was one.
// KEYS: stop, probe.
var resumeScript = redis.NewScript(`
redis.call('DEL', KEYS[2])
return redis.call('DEL', KEYS[1])
`)

// admission is the answer of admitScript.
type admission struct {
	sentMsgID int64
	sent      bool
	stopped   *stopRecord
	wait      time.Duration // rate limit: not reserved, come back later
	sleep     time.Duration // reserved: sleep, then send
	probe     bool
}

// control talks to the control-plane keys of every account.
type control struct {
	rdb     redis.UniversalClient
	prefix  string
	sentTTL time.Duration
	// probeLease bounds how long a probe send may hold the probe.
	probeLease time.Duration
	// horizon is the longest a send waits in process for its rate slot.
	horizon time.Duration
}

func (c *control) key(appID, suffix string) string {
	return c.prefix + "{" + appID + "}:" + suffix
}

// admit runs the admission script for a task of appID.
func (c *control) admit(ctx context.Context, appID, taskID, templateID string,
	rate Rate) (admission, error) {
	keys := []string{
		c.key(appID, "sent:"+taskID),
		c.key(appID, "stop"),
		c.key(appID, "stop:tpl:"+templateID),
		c.key(appID, "probe"),
		c.key(appID, "rate"),
	}
	res, err := admitScript.Run(ctx, c.rdb, keys,
		rate.emissionMicros(), max(rate.Burst, 1), c.horizon.Milliseconds(),
		c.probeLease.Milliseconds()).StringSlice()
	if err != nil {
		return admission{}, fmt.Errorf("admission check: %w", err)
	}
	return parseAdmission(res)
}

func parseAdmission(res []string) (admission, error) {
	var a admission
	if len(res) < 2 {
		return a, fmt.Errorf("admission check: unexpected answer %q", res)
	}
	n, _ := strconv.ParseInt(res[1], 10, 64)
	switch res[0] {
	case "sent":
		a.sent, a.sentMsgID = true, n
	case "stopped":
		var rec stopRecord
		if len(res) < 3 || json.Unmarshal([]byte(res[2]), &rec) != nil {
			return a, fmt.Errorf("admission check: unreadable stop record")
		}
		rec.Until = n
		a.stopped = &rec
	case "wait":
		a.wait = time.Duration(n) * time.Millisecond
	case "ok":
		a.sleep = time.Duration(n) * time.Millisecond
		a.probe = len(res) > 2 && res[2] == "1"
	default:
		return a, fmt.Errorf("admission check: unexpected answer %q", res)
	}
	return a, nil
}

// recordSent remembers that taskID's message went out as msgID. It runs
// on a context of its own: the message is out even if the task's context
// has ended.
func (c *control) recordSent(ctx context.Context, appID, taskID string, msgID int64) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return c.rdb.Set(ctx, c.key(appID, "sent:"+taskID), strconv.FormatInt(msgID, 10), c.sentTTL).Err()
}

// stop records a stop of the account (or of one template when
// templateID is set) for d. It returns when the stop ends and whether
// this call set it.
func (c *control) stop(ctx context.Context, appID, templateID, kind string, d Decision,
	dur time.Duration) (time.Time, bool, error) {
	key := c.key(appID, "stop")
	if templateID != "" {
		key = c.key(appID, "stop:tpl:"+templateID)
	}
	res, err := stopScript.Run(context.WithoutCancel(ctx), c.rdb, []string{key},
		kind, d.Reason, d.Code, max(dur.Milliseconds(), 1)).Slice()
	if err != nil || len(res) != 2 {
		return time.Time{}, false, fmt.Errorf("record stop: %w", err)
	}
	set, _ := res[0].(int64)
	ms, _ := strconv.ParseInt(fmt.Sprint(res[1]), 10, 64)
	return time.UnixMilli(ms), set == 1, nil
}

// resume ends an account stop after a probe send succeeded; true if a
// stop was ended.
func (c *control) resume(ctx context.Context, appID string) (bool, error) {
	n, err := resumeScript.Run(ctx, c.rdb, []string{c.key(appID, "stop"), c.key(appID, "probe")}).Int()
	return n == 1, err
}

// releaseProbe lets another task probe when this probe ended without an
// answer from WeChat.
func (c *control) releaseProbe(ctx context.Context, appID string) {
	c.rdb.Del(context.WithoutCancel(ctx), c.key(appID, "probe"))
}

// Rate is an account's send rate limit, shared by every worker process.
// The zero Rate is no limit.
type Rate struct {
	// PerSecond is the sustained rate; 0 means unlimited.
	PerSecond float64
	// Burst is how many sends may go at once after a quiet spell; at
	// least 1.
	Burst int
}

// rateHeadroom is the share of the configured rate the limiter aims at.
// Slots are granted on the Redis clock but counted by WeChat on arrival;
// the 3% left over absorbs the jitter in between, so no second at WeChat
// exceeds the rate plus the burst.
const rateHeadroom = 0.97

func (r Rate) emissionMicros() int64 {
	if r.PerSecond <= 0 {
		return 0
	}
	return int64(float64(time.Second/time.Microsecond) / (r.PerSecond * rateHeadroom))
}

// AccountStop is a stop in force, as operators see it.
type AccountStop struct {
	AppID string
	// TemplateID is set for a template stop (43116).
	TemplateID string
	// Kind is "stopped", "slowed", "quota" or "template".
	Kind   string
	Reason string
	Code   int
	Until  time.Time
}

// ListStops returns the stops recorded for appID under keyPrefix (the
// worker's KeyPrefix), including ones whose time is up but whose probe
// has not yet succeeded.
func ListStops(ctx context.Context, rdb redis.UniversalClient, keyPrefix, appID string) (
	[]AccountStop, error) {
	c := &control{rdb: rdb, prefix: keyPrefix}
	keys := []string{c.key(appID, "stop")}
	tplPrefix := c.key(appID, "stop:tpl:")
	iter := rdb.Scan(ctx, 0, tplPrefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("list stops: %w", err)
	}
	vals, err := rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("list stops: %w", err)
	}

	var out []AccountStop
	for i, v := range vals {
		s, ok := v.(string)
		var rec stopRecord
		if !ok || json.Unmarshal([]byte(s), &rec) != nil {
			continue
		}
		st := AccountStop{AppID: appID, Kind: rec.Kind, Reason: rec.Reason, Code: rec.Code,
			Until: rec.until()}
		if i > 0 {
			st.TemplateID = keys[i][len(tplPrefix):]
		}
		out = append(out, st)
	}
	return out, nil
}

// Resume clears every stop of appID at once, for an operator who fixed
// the cause (whitelisted the IP, restored the permission). It returns how
// many stops it cleared. Waiting tasks send at their next wake-up.
func Resume(ctx context.Context, rdb redis.UniversalClient, keyPrefix, appID string) (int, error) {
	stops, err := ListStops(ctx, rdb, keyPrefix, appID)
	if err != nil {
		return 0, err
	}
	c := &control{rdb: rdb, prefix: keyPrefix}
	keys := []string{c.key(appID, "stop"), c.key(appID, "probe")}
	for _, st := range stops {
		if st.TemplateID != "" {
			keys = append(keys, c.key(appID, "stop:tpl:"+st.TemplateID))
		}
	}
	if err := rdb.Del(ctx, keys...).Err(); err != nil {
		return 0, fmt.Errorf("resume %s: %w", appID, err)
	}
	return len(stops), nil
}
