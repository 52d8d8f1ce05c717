package wechattest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"
)

// SlowMode says when a slow send's delay happens.
type SlowMode string

const (
	// SlowAfter delivers and records the message, then waits before
	// answering: a client that times out has still sent the message. This
	// is the real failure mode and the default.
	SlowAfter SlowMode = "after"
	// SlowBefore waits before doing anything: a client that gives up
	// during the wait has sent nothing.
	SlowBefore SlowMode = "before"
)

// ErrcodeRule makes template sends answer Errcode instead of delivering.
// A send matches when its touser is in OpenIDs (or OpenIDs is empty) and
// its template_id is in TemplateIDs (or TemplateIDs is empty), so a rule
// with both empty matches every send.
type ErrcodeRule struct {
	Errcode int `json:"errcode"`
	// Errmsg replaces the usual errmsg of Errcode; a rid is appended.
	Errmsg      string   `json:"errmsg,omitempty"`
	OpenIDs     []string `json:"openids,omitempty"`
	TemplateIDs []string `json:"template_ids,omitempty"`
	// Times is how many matching sends the rule answers before it goes
	// quiet; zero means every one. SetFaults and Reset restart the count.
	Times int `json:"times,omitempty"`
}

// Faults are the misbehaviours the server injects. The zero Faults
// injects none. All fields combine. Rates are probabilities in [0, 1].
//
// A template send meets them in this order: HTTP5xxRate; Latency and a
// SlowBefore delay; the real checks (token, body, recipient); ErrcodeFor,
// then ErrcodeRate; the client_msg_id dedupe; DailyQuota, MinuteLimit,
// OpenIDFrequency; delivery; a SlowAfter delay.
type Faults struct {
	// ErrcodeRate maps an errcode to the probability that a send answers
	// it, e.g. {-1: 0.2}. The probabilities must sum to at most 1.
	ErrcodeRate map[int]float64 `json:"errcode_rate,omitempty"`
	// ErrcodeFor answers fixed errcodes for chosen recipients or
	// templates; the first matching rule wins.
	ErrcodeFor []ErrcodeRule `json:"errcode_for,omitempty"`
	// HTTP5xxRate is the share of sends answered with HTTP 500, 502 or
	// 503 and an HTML body, before anything is processed.
	HTTP5xxRate float64 `json:"http_5xx_rate,omitempty"`
	// SlowRate is the share of sends delayed by SlowDelay, at the moment
	// SlowMode says (SlowAfter when empty).
	SlowRate  float64       `json:"slow_rate,omitempty"`
	SlowDelay time.Duration `json:"slow_delay,omitempty"`
	SlowMode  SlowMode      `json:"slow_mode,omitempty"`
	// Latency is added before every send is processed; a client that
	// gives up meanwhile has sent nothing.
	Latency time.Duration `json:"latency,omitempty"`
	// DailyQuota, when positive, is how many deliveries a day gets; later
	// sends answer 45009 until 00:00 Asia/Shanghai on the server's clock.
	DailyQuota int `json:"daily_quota,omitempty"`
	// MinuteLimit, when positive, is how many deliveries a calendar
	// minute gets; later sends in that minute answer 45011.
	MinuteLimit int `json:"minute_limit,omitempty"`
	// OpenIDFrequency, when positive, is how many deliveries one openid
	// gets per calendar minute; later sends to it answer 43117.
	OpenIDFrequency int `json:"openid_frequency,omitempty"`
	// TokenErrcode, when non-zero, is answered by both token endpoints to
	// every call. 40164 gets an errmsg naming the caller's IP.
	TokenErrcode int `json:"token_errcode,omitempty"`
	// TokenErrmsg replaces the usual errmsg of TokenErrcode.
	TokenErrmsg string `json:"token_errmsg,omitempty"`
}

// Validate reports the first field of f that is out of range.
func (f Faults) Validate() error {
	sum := 0.0
	for code, p := range f.ErrcodeRate {
		if code == 0 {
			return errors.New("errcode_rate: errcode 0 is not an error")
		}
		if !isProbability(p) {
			return fmt.Errorf("errcode_rate: %d: rate %v is not in [0, 1]", code, p)
		}
		sum += p
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("errcode_rate: rates sum to %v, more than 1", sum)
	}
	for i, r := range f.ErrcodeFor {
		if r.Errcode == 0 || r.Times < 0 {
			return fmt.Errorf("errcode_for[%d]: want a non-zero errcode, times >= 0", i)
		}
	}
	return f.validateScalars()
}

func (f Faults) validateScalars() error {
	switch {
	case !isProbability(f.HTTP5xxRate):
		return fmt.Errorf("http_5xx_rate: %v is not in [0, 1]", f.HTTP5xxRate)
	case !isProbability(f.SlowRate):
		return fmt.Errorf("slow_rate: %v is not in [0, 1]", f.SlowRate)
	case f.SlowDelay < 0 || f.Latency < 0:
		return errors.New("slow_delay and latency must not be negative")
	case f.SlowMode != "" && f.SlowMode != SlowAfter && f.SlowMode != SlowBefore:
		return fmt.Errorf("slow_mode: %q is neither %q nor %q",
			f.SlowMode, SlowAfter, SlowBefore)
	case f.DailyQuota < 0 || f.MinuteLimit < 0 || f.OpenIDFrequency < 0:
		return errors.New("quotas and limits must not be negative")
	}
	return nil
}

func isProbability(p float64) bool { return p >= 0 && p <= 1 }

// clone returns a deep copy, so the server and its caller share nothing.
func (f Faults) clone() Faults {
	f.ErrcodeRate = maps.Clone(f.ErrcodeRate)
	f.ErrcodeFor = slices.Clone(f.ErrcodeFor)
	for i := range f.ErrcodeFor {
		r := &f.ErrcodeFor[i]
		r.OpenIDs = slices.Clone(r.OpenIDs)
		r.TemplateIDs = slices.Clone(r.TemplateIDs)
	}
	return f
}

// activeFaults is Faults prepared for per-request use: sets instead of
// lists, sorted cumulative rates, and the count of each rule's firings.
// The server's mutex guards it.
type activeFaults struct {
	Faults
	rateCodes []int
	rateCum   []float64
	rules     []activeRule
}

type activeRule struct {
	ErrcodeRule
	openIDs   map[string]bool
	templates map[string]bool
	fired     int
}

func activate(f Faults) *activeFaults {
	f = f.clone()
	a := &activeFaults{Faults: f, rateCodes: slices.Sorted(maps.Keys(f.ErrcodeRate))}

	cum := 0.0
	for _, code := range a.rateCodes {
		cum += f.ErrcodeRate[code]
		a.rateCum = append(a.rateCum, cum)
	}
	for _, r := range f.ErrcodeFor {
		a.rules = append(a.rules, activeRule{
			ErrcodeRule: r,
			openIDs:     set(r.OpenIDs),
			templates:   set(r.TemplateIDs),
		})
	}
	return a
}

func set(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, v := range list {
		m[v] = true
	}
	return m
}

// injected returns the errcode a send to touser with templateID must
// answer instead of being delivered, if any.
func (a *activeFaults) injected(touser, templateID string, rng *rand.Rand) answer {
	for i := range a.rules {
		r := &a.rules[i]
		if r.matches(touser, templateID) {
			r.fired++
			return answer{code: r.Errcode, msg: messageFor(r.Errcode, r.Errmsg)}
		}
	}
	if len(a.rateCodes) == 0 {
		return answer{}
	}

	draw := rng.Float64()
	for i, cum := range a.rateCum {
		if draw < cum {
			return fail(a.rateCodes[i])
		}
	}
	return answer{}
}

func (r *activeRule) matches(touser, templateID string) bool {
	if r.Times > 0 && r.fired >= r.Times {
		return false
	}
	return (len(r.openIDs) == 0 || r.openIDs[touser]) &&
		(len(r.templates) == 0 || r.templates[templateID])
}

// delays returns the waits of one send: before processing and after it.
func (a *activeFaults) delays(rng *rand.Rand) (before, after time.Duration) {
	before = a.Latency
	if a.SlowRate == 0 || rng.Float64() >= a.SlowRate {
		return before, 0
	}
	if a.SlowMode == SlowBefore {
		return before + a.SlowDelay, 0
	}
	return before, a.SlowDelay
}

// gatewayStatus returns the HTTP 5xx status a send must get, or 0.
func (a *activeFaults) gatewayStatus(rng *rand.Rand) int {
	if a.HTTP5xxRate == 0 || rng.Float64() >= a.HTTP5xxRate {
		return 0
	}
	statuses := [...]int{500, 502, 503}
	return statuses[rng.IntN(len(statuses))]
}

// faultsAlias has Faults' fields without its JSON methods.
type faultsAlias Faults

// faultsWire is the JSON form of Faults: durations as strings like
// "1.5s" ("ms", "m" and the other units of time.ParseDuration work too).
type faultsWire struct {
	*faultsAlias
	SlowDelay wireDuration `json:"slow_delay,omitempty"`
	Latency   wireDuration `json:"latency,omitempty"`
}

// MarshalJSON writes f with durations as strings.
func (f Faults) MarshalJSON() ([]byte, error) {
	alias := faultsAlias(f)
	return json.Marshal(faultsWire{
		faultsAlias: &alias,
		SlowDelay:   wireDuration(f.SlowDelay),
		Latency:     wireDuration(f.Latency),
	})
}

// UnmarshalJSON reads f, taking durations as strings or as nanoseconds.
// Unknown fields are an error, so that a misspelt fault is not silently
// ignored.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var alias faultsAlias
	w := faultsWire{faultsAlias: &alias}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("decode faults: %w", err)
	}

	*f = Faults(alias)
	f.SlowDelay = time.Duration(w.SlowDelay)
	f.Latency = time.Duration(w.Latency)
	return nil
}

type wireDuration time.Duration

func (d wireDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *wireDuration) UnmarshalJSON(b []byte) error {
	var ns int64
	if err := json.Unmarshal(b, &ns); err == nil {
		*d = wireDuration(ns)
		return nil
	}

	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s is neither a string nor nanoseconds", b)
	}
	parsed, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("parse duration: %w", err)
	}
	*d = wireDuration(parsed)
	return nil
}
