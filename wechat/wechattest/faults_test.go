package wechattest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/wechat"
)

func TestDailyQuotaRollsOverAtShanghaiMidnight(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{Faults: Faults{DailyQuota: 2}})
	h.srv.SetNow(time.Date(2025, 3, 14, 23, 59, 30, 0, shanghai))
	token := h.token()

	wantCode(t, h.send(token, message("o-1", "")), 0)
	wantCode(t, h.send(token, message("o-2", "")), 0)
	r := h.send(token, message("o-3", ""))
	wantCode(t, r, wechat.CodeDailyQuota)
	if !strings.HasPrefix(r.Errmsg, "reach max api daily quota limit") {
		t.Fatalf("errmsg %q", r.Errmsg)
	}

	h.srv.Advance(29 * time.Second)
	wantCode(t, h.send(token, message("o-3", "")), wechat.CodeDailyQuota)
	h.srv.Advance(time.Second)
	wantCode(t, h.send(token, message("o-3", "")), 0)
}

func TestDailyQuotaIgnoresUTCMidnight(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{TokenTTL: 48 * time.Hour, Faults: Faults{DailyQuota: 1}})
	h.srv.SetNow(time.Date(2025, 3, 14, 23, 59, 0, 0, time.UTC)) // 07:59 in Shanghai
	token := h.token()

	wantCode(t, h.send(token, message("o-1", "")), 0)
	h.srv.Advance(2 * time.Minute)
	wantCode(t, h.send(token, message("o-1", "")), wechat.CodeDailyQuota)

	h.srv.AdvanceDay()
	if got := h.srv.Now().In(shanghai); got.Hour() != 0 || got.Day() != 16 {
		t.Fatalf("AdvanceDay moved to %v, want 2025-03-16 00:00 +08", got)
	}
	wantCode(t, h.send(token, message("o-1", "")), 0)
}

func TestMinuteLimitCountsCalendarMinutes(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{Faults: Faults{MinuteLimit: 3}})
	token := h.token()
	h.srv.Advance(50 * time.Second)

	for i := range 3 {
		wantCode(t, h.send(token, message("o-1", string(rune('a'+i)))), 0)
	}
	wantCode(t, h.send(token, message("o-2", "")), wechat.CodeMinuteQuota)
	h.srv.Advance(9 * time.Second)
	wantCode(t, h.send(token, message("o-2", "")), wechat.CodeMinuteQuota)

	h.srv.Advance(time.Second) // 10:01:00, only 10 s after the first send
	wantCode(t, h.send(token, message("o-2", "")), 0)
	if st := h.srv.Stats(); st.Errcodes[45011] != 2 || st.Deliveries != 4 {
		t.Fatalf("errcodes %v, deliveries %d", st.Errcodes, st.Deliveries)
	}
}

func TestOpenIDFrequencyLimitsOneRecipientOnly(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{Faults: Faults{OpenIDFrequency: 2}})
	token := h.token()

	wantCode(t, h.send(token, message("o-busy", "1")), 0)
	wantCode(t, h.send(token, message("o-busy", "2")), 0)
	wantCode(t, h.send(token, message("o-busy", "3")), wechat.CodeOpenIDTooFrequent)
	wantCode(t, h.send(token, message("o-quiet", "1")), 0)

	h.srv.Advance(time.Minute)
	wantCode(t, h.send(token, message("o-busy", "3")), 0)
}

func TestDuplicatesDoNotUseQuota(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{Faults: Faults{DailyQuota: 1}})
	token := h.token()

	first := h.send(token, message("o-1", "same"))
	dup := h.send(token, message("o-1", "same"))
	wantCode(t, dup, 0)
	if dup.MsgID != first.MsgID {
		t.Fatalf("duplicate got msgid %d, want %d", dup.MsgID, first.MsgID)
	}
}

func TestSlowAfterProcessingStillDelivers(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	token := h.token()
	h.srv.SetFaults(Faults{SlowRate: 1, SlowDelay: time.Minute, SlowMode: SlowAfter})

	impatient := &http.Client{Timeout: 200 * time.Millisecond}
	body := bytes.NewReader(mustJSON(t, message("o-1", "retry-me")))
	resp, err := impatient.Post(h.sendURL(token), "application/json", body)
	if err == nil {
		resp.Body.Close()
		t.Fatal("the slow send answered within the client timeout")
	}
	eventually(t, "the delivery", func() bool { return h.srv.Stats().Deliveries == 1 })

	h.srv.SetFaults(Faults{})
	retry := h.send(token, message("o-1", "retry-me"))
	wantCode(t, retry, 0)
	if retry.MsgID != h.srv.Deliveries()[0].MsgID || h.srv.Stats().DuplicatesSuppressed != 1 {
		t.Fatalf("retry got msgid %d; stats %+v", retry.MsgID, h.srv.Stats())
	}
}

func TestSlowBeforeProcessingDeliversNothingWhenTheClientLeaves(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	token := h.token()
	h.srv.SetFaults(Faults{SlowRate: 1, SlowDelay: time.Minute, SlowMode: SlowBefore})

	impatient := &http.Client{Timeout: 200 * time.Millisecond}
	body := bytes.NewReader(mustJSON(t, message("o-1", "x")))
	resp, err := impatient.Post(h.sendURL(token), "application/json", body)
	if err == nil {
		resp.Body.Close()
		t.Fatal("the slow send answered within the client timeout")
	}

	eventually(t, "the abandoned send", func() bool { return h.srv.Stats().Abandoned == 1 })
	if st := h.srv.Stats(); st.Deliveries != 0 {
		t.Fatalf("%d deliveries, want 0", st.Deliveries)
	}
}

func TestLatencyDelaysEverySend(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{Faults: Faults{Latency: 50 * time.Millisecond}})
	token := h.token()

	began := time.Now()
	wantCode(t, h.send(token, message("o-1", "")), 0)
	if took := time.Since(began); took < 50*time.Millisecond {
		t.Fatalf("send answered after %v, want at least the 50ms latency", took)
	}
}

func TestHTTP5xxFaultAnswersHTMLAndDeliversNothing(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{Faults: Faults{HTTP5xxRate: 1}})
	token := h.token()

	for range 10 {
		body := bytes.NewReader(mustJSON(t, message("o-1", "")))
		resp, err := http.Post(h.sendURL(token), "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()

		kind := resp.Header.Get("Content-Type")
		if !slices.Contains([]int{500, 502, 503}, resp.StatusCode) ||
			!strings.HasPrefix(kind, "text/html") || !strings.Contains(string(page), "<html>") {
			t.Fatalf("HTTP %d %q: %s", resp.StatusCode, kind, page)
		}
	}
	if st := h.srv.Stats(); st.HTTP5xx != 10 || st.SendAttempts != 10 || st.Deliveries != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestErrcodeRateAnswersTheShareAsked(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{Seed: 7, Faults: Faults{ErrcodeRate: map[int]float64{-1: 1}}})
	token := h.token()

	wantCode(t, h.send(token, message("o-1", "")), wechat.CodeSystemBusy)

	h.srv.SetFaults(Faults{ErrcodeRate: map[int]float64{-1: 0.3, 45011: 0.2}})
	for range 200 {
		h.send(token, message("o-1", ""))
	}
	st := h.srv.Stats()
	busy, minute := st.Errcodes[-1]-1, st.Errcodes[45011]
	inRange := busy >= 30 && busy <= 90 && minute >= 15 && minute <= 65
	if !inRange || busy+minute+st.Deliveries != 200 {
		t.Fatalf("of 200 sends: %d -1, %d 45011, %d delivered", busy, minute, st.Deliveries)
	}
}

func TestErrcodeForTargetsRecipientsAndTemplates(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{Faults: Faults{ErrcodeFor: []ErrcodeRule{
		{Errcode: wechat.CodeUserRefused, OpenIDs: []string{"o-refuses"}},
		{
			Errcode:     wechat.CodeTemplateBanned,
			TemplateIDs: []string{"tmpl-banned"},
			Errmsg:      "banned here",
		},
		{Errcode: wechat.CodeSystemBusy, OpenIDs: []string{"o-flaky"}, Times: 2},
	}}})
	token := h.token()

	wantCode(t, h.send(token, message("o-refuses", "")), wechat.CodeUserRefused)
	banned := message("o-1", "")
	banned.TemplateID = "tmpl-banned"
	r := h.send(token, banned)
	if r.Errcode != 43116 || !strings.HasPrefix(r.Errmsg, "banned here rid: ") {
		t.Fatalf("banned template: %d %q", r.Errcode, r.Errmsg)
	}

	wantCode(t, h.send(token, message("o-flaky", "f")), wechat.CodeSystemBusy)
	wantCode(t, h.send(token, message("o-flaky", "f")), wechat.CodeSystemBusy)
	wantCode(t, h.send(token, message("o-flaky", "f")), 0)

	h.srv.Reset()
	wantCode(t, h.send(token, message("o-flaky", "f")), wechat.CodeSystemBusy)
}

func TestFaultsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    Faults
		ok   bool
	}{
		{"zero", Faults{}, true},
		{"everything", Faults{
			ErrcodeRate: map[int]float64{-1: 0.5, 45011: 0.5},
			HTTP5xxRate: 1, SlowRate: 0.1, SlowDelay: time.Second, SlowMode: SlowBefore,
			DailyQuota: 1, TokenErrcode: 40164,
		}, true},
		{"rates above 1", Faults{ErrcodeRate: map[int]float64{-1: 0.6, 45011: 0.5}}, false},
		{"errcode 0 rate", Faults{ErrcodeRate: map[int]float64{0: 0.1}}, false},
		{"negative rate", Faults{HTTP5xxRate: -0.1}, false},
		{"slow rate above 1", Faults{SlowRate: 2}, false},
		{"negative latency", Faults{Latency: -time.Second}, false},
		{"unknown mode", Faults{SlowMode: "during"}, false},
		{"negative quota", Faults{MinuteLimit: -1}, false},
		{"rule without errcode", Faults{ErrcodeFor: []ErrcodeRule{{Times: 1}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.f.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestSetFaultsPanicsOnInvalidFaults(t *testing.T) {
	t.Parallel()
	srv := NewServer(Config{})
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	srv.SetFaults(Faults{SlowRate: 3})
}

func TestFaultsJSONUsesDurationStrings(t *testing.T) {
	t.Parallel()
	f := Faults{
		SlowRate:    0.5,
		SlowDelay:   1500 * time.Millisecond,
		Latency:     100 * time.Millisecond,
		ErrcodeRate: map[int]float64{-1: 0.2},
	}

	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if !strings.Contains(text, `"slow_delay":"1.5s"`) ||
		!strings.Contains(text, `"errcode_rate":{"-1":0.2}`) {
		t.Fatalf("JSON %s", b)
	}

	var back Faults
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.SlowDelay != f.SlowDelay || back.Latency != f.Latency ||
		back.ErrcodeRate[-1] != 0.2 {
		t.Fatalf("round trip gave %+v", back)
	}
	err = json.Unmarshal([]byte(`{"latency":5000000}`), &back)
	if err != nil || back.Latency != 5*time.Millisecond {
		t.Fatalf("nanoseconds: %v, %v", err, back.Latency)
	}
	if err := json.Unmarshal([]byte(`{"latncy":"1s"}`), &back); err == nil {
		t.Fatal("a misspelt field was accepted")
	}
}
