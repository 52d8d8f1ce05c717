package wechattest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/wechat"
)

// admin calls an admin route and decodes its JSON answer into out.
func (h *harness) admin(method, path, body string, out any) int {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL()+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()

	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

func TestAdminFaultsRouteSetsAndShowsFaults(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})

	body := `{"errcode_rate":{"-1":0.1},"slow_rate":0.5,"slow_delay":"1.5s","latency":"10ms",` +
		`"errcode_for":[{"errcode":43101,"openids":["o-x"],"times":1}],"daily_quota":100}`
	var shown Faults
	if code := h.admin("POST", "/_mock/faults", body, &shown); code != http.StatusOK {
		t.Fatalf("POST /_mock/faults: HTTP %d", code)
	}

	f := h.srv.Faults()
	if f.SlowDelay != 1500*time.Millisecond || f.Latency != 10*time.Millisecond ||
		f.ErrcodeRate[-1] != 0.1 || f.DailyQuota != 100 ||
		len(f.ErrcodeFor) != 1 || f.ErrcodeFor[0].OpenIDs[0] != "o-x" {
		t.Fatalf("faults now %+v", f)
	}
	var got Faults
	h.admin("GET", "/_mock/faults", "", &got)
	if got.SlowDelay != f.SlowDelay || shown.SlowDelay != f.SlowDelay {
		t.Fatalf("GET shows %+v", got)
	}

	h.admin("POST", "/_mock/faults", `{}`, nil)
	if f := h.srv.Faults(); f.DailyQuota != 0 || f.ErrcodeRate != nil {
		t.Fatalf("{} left %+v", f)
	}
}

func TestAdminFaultsRouteRefusesBadInput(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{Faults: Faults{MinuteLimit: 9}})

	bodies := []string{`{"minute_limt":5}`, `{"slow_rate":1.5}`, `{"latency":"soon"}`, `[`}
	for _, body := range bodies {
		var e adminError
		code := h.admin("POST", "/_mock/faults", body, &e)
		if code != http.StatusBadRequest || e.Error == "" {
			t.Fatalf("%s: HTTP %d %q, want 400 with an error", body, code, e.Error)
		}
	}
	if h.srv.Faults().MinuteLimit != 9 {
		t.Fatal("a refused request changed the faults")
	}
}

func TestAdminStatsAndDeliveriesRoutes(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	token := h.token()
	for _, id := range []string{"a", "b", "c"} {
		h.send(token, message("o-1", id))
	}
	h.send(token, message("o-1", "a"))

	var st Stats
	h.admin("GET", "/_mock/stats", "", &st)
	if st.Deliveries != 3 || st.DuplicatesSuppressed != 1 || st.StableTokenCalls != 1 ||
		st.PerKey[DeliveryKey{"o-1", "b"}] != 1 || st.PerSecond[start.Unix()] != 3 {
		t.Fatalf("stats %+v", st)
	}

	var ds []Delivery
	h.admin("GET", "/_mock/deliveries?limit=2", "", &ds)
	if len(ds) != 2 || ds[0].ClientMsgID != "b" || ds[1].ClientMsgID != "c" ||
		ds[1].MsgID != FirstMsgID+2 {
		t.Fatalf("deliveries %+v", ds)
	}
	if code := h.admin("GET", "/_mock/deliveries?limit=x", "", nil); code != http.StatusBadRequest {
		t.Fatalf("bad limit: HTTP %d", code)
	}
}

func TestAdminResetClearsCountsButKeepsTokensAndFaults(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{Faults: Faults{MinuteLimit: 5}})
	token := h.token()
	h.send(token, message("o-1", "a"))

	if code := h.admin("POST", "/_mock/reset", "", nil); code != http.StatusOK {
		t.Fatalf("reset: HTTP %d", code)
	}
	st := h.srv.Stats()
	if st.Deliveries != 0 || st.TokenCalls != 0 || len(st.PerKey) != 0 ||
		len(h.srv.Deliveries()) != 0 {
		t.Fatalf("after reset %+v", st)
	}
	if h.srv.Faults().MinuteLimit != 5 {
		t.Fatal("reset dropped the faults")
	}

	again := h.send(token, message("o-1", "a"))
	wantCode(t, again, 0)
	if h.srv.Stats().Deliveries != 1 {
		t.Fatal("the dedupe memory survived the reset")
	}
}

func TestAdminRotateRoute(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	token := h.token()

	if code := h.admin("POST", "/_mock/rotate?appid=wx-no", "", nil); code != http.StatusNotFound {
		t.Fatalf("unknown appid: HTTP %d", code)
	}
	code := h.admin("POST", "/_mock/rotate?appid="+DefaultAppID, "", nil)
	if code != http.StatusOK {
		t.Fatalf("rotate: HTTP %d", code)
	}
	wantCode(t, h.send(token, message("o-1", "")), wechat.CodeInvalidCredential)
}

func TestAdminClockRoute(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})

	var c clockBody
	h.admin("POST", "/_mock/clock", `{"now":"2025-06-01T23:00:00+08:00","advance":"30m"}`, &c)
	want := time.Date(2025, 6, 1, 23, 30, 0, 0, shanghai)
	if !c.Now.Equal(want) || c.Day != "2025-06-01" || !h.srv.Now().Equal(want) {
		t.Fatalf("clock %+v, want %v", c, want)
	}

	h.admin("POST", "/_mock/clock", `{"advance_day":true}`, &c)
	if c.Day != "2025-06-02" || !c.Now.Equal(want.Add(30*time.Minute)) {
		t.Fatalf("after advance_day %+v", c)
	}
	h.admin("GET", "/_mock/clock", "", &c)
	if c.Day != "2025-06-02" {
		t.Fatalf("GET %+v", c)
	}
	code := h.admin("POST", "/_mock/clock", `{"advance":"later"}`, nil)
	if code != http.StatusBadRequest {
		t.Fatalf("bad advance: HTTP %d", code)
	}
}

func TestAdminRoutesCheckTheMethod(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})

	if code := h.admin("POST", "/_mock/stats", "", nil); code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /_mock/stats: HTTP %d", code)
	}
	if code := h.admin("GET", "/_mock/reset", "", nil); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /_mock/reset: HTTP %d", code)
	}
}

func TestDeliveryKeyTextRoundTrip(t *testing.T) {
	t.Parallel()
	for _, k := range []DeliveryKey{{"o-1", "bill-1"}, {"o-1", ""}, {"o-1", "a/b"}} {
		b, _ := k.MarshalText()
		var back DeliveryKey
		if err := back.UnmarshalText(b); err != nil || back != k {
			t.Fatalf("%v came back as %v (%v)", k, back, err)
		}
	}
}

func TestStartServesUntilClose(t *testing.T) {
	t.Parallel()
	srv := NewServer(Config{})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start("127.0.0.1:0"); err == nil {
		t.Fatal("a second Start succeeded")
	}

	resp, err := http.Get(srv.URL() + "/_mock/clock")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") {
		t.Fatalf("HTTP %d from %s", resp.StatusCode, srv.URL())
	}

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(srv.URL() + "/_mock/clock"); err == nil {
		t.Fatal("still serving after Close")
	}
}

func TestCloseReleasesSlowSends(t *testing.T) {
	t.Parallel()
	srv := NewServer(Config{Faults: Faults{SlowRate: 1, SlowDelay: time.Hour}})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}

	answered := make(chan error, 1)
	go func() {
		target := srv.URL() + "/cgi-bin/message/template/send?access_token=x"
		resp, err := http.Post(target, "application/json", strings.NewReader(`{}`))
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	eventually(t, "the send to arrive", func() bool { return srv.Stats().SendAttempts == 1 })

	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-answered; err != nil {
		t.Fatalf("the slow send failed instead of answering: %v", err)
	}
}
