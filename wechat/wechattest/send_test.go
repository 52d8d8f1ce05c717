package wechattest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/wechat"
)

func TestSendDeliversAndAnswersAMsgIDAbove2To53(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})

	m := message("oUser_01-x", "bill-1")
	m.URL = "https://example.com/bill?id=1&x=2"
	r := h.send(h.token(), m)
	wantCode(t, r, 0)
	if r.MsgID != FirstMsgID || r.Errmsg != "ok" || r.MsgID <= 1<<53 {
		t.Fatalf("msgid %d errmsg %q, want %d ok", r.MsgID, r.Errmsg, FirstMsgID)
	}

	ds := h.srv.Deliveries()
	if len(ds) != 1 {
		t.Fatalf("%d deliveries, want 1", len(ds))
	}
	d := ds[0]
	if d.AppID != DefaultAppID || d.ToUser != m.ToUser || d.TemplateID != m.TemplateID ||
		d.ClientMsgID != "bill-1" || d.MsgID != r.MsgID || d.URL != m.URL ||
		d.Data["thing1"].Value != "Electricity bill" || !d.At.Equal(start) {
		t.Fatalf("delivery %+v", d)
	}
	if next := h.send(h.token(), message("o-2", "")); next.MsgID != FirstMsgID+1 {
		t.Fatalf("second msgid %d, want %d", next.MsgID, FirstMsgID+1)
	}
}

func TestSendChecksTheAccessToken(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{TokenTTL: time.Hour})
	expired := h.token()
	h.srv.Advance(time.Hour)

	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"missing", "", wechat.CodeTokenMissing},
		{"unknown", "81_not-a-token", wechat.CodeInvalidCredential},
		{"expired", expired, wechat.CodeTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A bad body must not hide the token error.
			wantCode(t, h.sendRaw(tt.token, []byte("{not json")), tt.want)
		})
	}
	if st := h.srv.Stats(); st.Deliveries != 0 || st.SendAttempts != 3 {
		t.Fatalf("deliveries %d of %d attempts", st.Deliveries, st.SendAttempts)
	}
}

func TestSendValidatesTheBody(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{Templates: map[string]bool{"tmpl-bill": true}})
	token := h.token()

	valid := string(mustJSON(t, message("o-1", "")))
	with := func(change func(*wechat.TemplateMessage)) string {
		m := message("o-1", "")
		change(&m)
		return string(mustJSON(t, m))
	}
	touser := func(id string) string {
		return with(func(m *wechat.TemplateMessage) { m.ToUser = id })
	}
	value := func(key, v string) string {
		return with(func(m *wechat.TemplateMessage) { m.Data[key] = wechat.DataItem{Value: v} })
	}
	escaped := func(plain, escape string) string {
		return strings.Replace(value("thing1", "A"+plain+"B"), plain, escape, 1)
	}
	const (
		argInvalid = wechat.CodeArgumentInvalid
		badFormat  = wechat.CodeDataFormat
		badOpenID  = wechat.CodeInvalidOpenID
	)
	misspelt := `{"touser":"o-1","temlate_id":"tmpl-bill","data":{"x":{"value":"1"}}}`

	tests := []struct {
		name    string
		body    string
		want    int
		wantMsg string
	}{
		{"valid", valid, 0, "ok"},
		{"empty body", "", 44002, "empty post data"},
		{"not JSON", `{"touser":`, badFormat, "data format error"},
		{"trailing garbage", valid + "}", badFormat, ""},
		{"wrong type", `{"touser":42,"template_id":"tmpl-bill"}`, badFormat, ""},
		{"html escape", escaped("&", `\u0026`), wechat.CodeIllegalChars, ""},
		{"upper-case html escape", escaped("<", `\u003C`), wechat.CodeIllegalChars, ""},
		{"other escapes are fine", escaped("-", `\u002d`), 0, ""},
		{"empty touser", touser(""), badOpenID, "invalid openid"},
		{"malformed touser", touser("o 1@x"), badOpenID, ""},
		{"too long touser", touser(strings.Repeat("o", 65)), badOpenID, ""},
		{"misspelt template_id", misspelt,
			wechat.CodeTemplateIDSize, "invalid template_id size"},
		{"unknown template", with(func(m *wechat.TemplateMessage) { m.TemplateID = "gone" }),
			wechat.CodeInvalidTemplateID, "invalid template_id"},
		{"no data", with(func(m *wechat.TemplateMessage) { m.Data = nil }),
			argInvalid, "argument invalid! data is empty"},
		{"thing of 20 runes", value("thing1", strings.Repeat("电", 20)), 0, ""},
		{"thing of 21 runes", value("thing1", strings.Repeat("电", 21)),
			argInvalid, "argument invalid! data.thing1.value invalid"},
		{"const of 21 runes", value("const4", strings.Repeat("a", 21)),
			argInvalid, "argument invalid! data.const4.value invalid"},
		{"phrase of 5 runes", value("phrase5", "已经缴费了"), 0, ""},
		{"phrase of 6 runes", value("phrase5", "已经缴费了吗"),
			argInvalid, "argument invalid! data.phrase5.value invalid"},
		{"character_string of 33", value("character_string3", strings.Repeat("9", 33)),
			argInvalid, "argument invalid! data.character_string3.value invalid"},
		{"other types have no cap", value("amount2", strings.Repeat("9", 200)), 0, ""},
		{"line break", value("amount2", "1\n2"),
			argInvalid, "argument invalid! data.amount2.value invalid"},
		{"first bad field is named", with(func(m *wechat.TemplateMessage) {
			m.Data["thing9"] = wechat.DataItem{Value: "a\rb"}
			m.Data["thing1"] = wechat.DataItem{Value: strings.Repeat("x", 30)}
		}), argInvalid, "argument invalid! data.thing1.value invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.sendRaw(token, []byte(tt.body))
			wantCode(t, r, tt.want)
			if tt.wantMsg != "" && !strings.HasPrefix(r.Errmsg, tt.wantMsg) {
				t.Fatalf("errmsg %q, want it to start with %q", r.Errmsg, tt.wantMsg)
			}
		})
	}
}

func TestSendTakesOnlyPost(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})

	wantCode(t, h.get("/cgi-bin/message/template/send?access_token="+h.token()), 43002)
}

func TestSendRefusesUnfollowedAndBlockedRecipients(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{
		Unfollowed: map[string]bool{"o-gone": true},
		Blocked:    map[string]bool{"o-blocked": true},
	})
	token := h.token()

	r := h.send(token, message("o-gone", ""))
	wantCode(t, r, wechat.CodeNotSubscribed)
	if !strings.HasPrefix(r.Errmsg, "require subscribe rid: ") {
		t.Fatalf("errmsg %q", r.Errmsg)
	}
	wantCode(t, h.send(token, message("o-blocked", "")), wechat.CodeBlacklisted)
	wantCode(t, h.send(token, message("o-here", "")), 0)

	st := h.srv.Stats()
	if st.Errcodes[43004] != 1 || st.Errcodes[43019] != 1 || st.Deliveries != 1 {
		t.Fatalf("errcodes %v, deliveries %d", st.Errcodes, st.Deliveries)
	}
}

func TestSendSuppressesDuplicatesWithinTheDedupeWindow(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	token := h.token()

	first := h.send(token, message("o-1", "bill-7"))
	h.srv.Advance(10*time.Minute - time.Second)
	dup := h.send(token, message("o-1", "bill-7"))
	wantCode(t, dup, 0)
	if dup.MsgID != first.MsgID {
		t.Fatalf("duplicate got msgid %d, want the first %d", dup.MsgID, first.MsgID)
	}
	other := h.send(token, message("o-2", "bill-7"))
	if other.MsgID == first.MsgID {
		t.Fatal("another openid with the same client_msg_id was suppressed")
	}

	st := h.srv.Stats()
	key := DeliveryKey{"o-1", "bill-7"}
	if st.Deliveries != 2 || st.DuplicatesSuppressed != 1 || st.PerKey[key] != 1 {
		t.Fatalf("deliveries %d, duplicates %d, per key %v",
			st.Deliveries, st.DuplicatesSuppressed, st.PerKey)
	}

	h.srv.Advance(time.Second)
	again := h.send(token, message("o-1", "bill-7"))
	if again.MsgID == first.MsgID {
		t.Fatal("a send 10 minutes after the first was still suppressed")
	}
	if n := h.srv.Stats().PerKey[DeliveryKey{"o-1", "bill-7"}]; n != 2 {
		t.Fatalf("per key count %d, want 2", n)
	}
}

func TestSendWithoutClientMsgIDIsNeverSuppressed(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	token := h.token()

	a := h.send(token, message("o-1", ""))
	b := h.send(token, message("o-1", ""))
	if a.MsgID == b.MsgID || h.srv.Stats().PerKey[DeliveryKey{ToUser: "o-1"}] != 2 {
		t.Fatalf("msgids %d %d, stats %+v", a.MsgID, b.MsgID, h.srv.Stats())
	}
}

func TestDeliveriesKeepOnlyTheLatest(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{MaxDeliveries: 3})
	token := h.token()

	for i := range 5 {
		wantCode(t, h.send(token, message("o-1", fmt.Sprint("m", i))), 0)
	}

	ds := h.srv.Deliveries()
	if len(ds) != 3 || ds[0].ClientMsgID != "m2" || ds[2].ClientMsgID != "m4" {
		t.Fatalf("kept %+v, want m2..m4", ds)
	}
	st := h.srv.Stats()
	if st.Deliveries != 5 || len(st.PerKey) != 3 || st.PerKey[DeliveryKey{"o-1", "m0"}] != 0 {
		t.Fatalf("deliveries %d, per key %v", st.Deliveries, st.PerKey)
	}
}

func TestConcurrentSendsAreEachCountedOnce(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})

	const workers, each = 32, 40
	tokens := make(chan string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tokens <- sendBatch(t, h, w, each)
		}()
	}
	wg.Wait()
	close(tokens)

	first := <-tokens
	for tok := range tokens {
		if tok != first {
			t.Fatal("concurrent stable_token calls got different tokens")
		}
	}
	checkEachOnce(t, h.srv, workers*each, workers*each/4)
}

// sendBatch sends each messages from worker w, repeating every fourth
// one, and returns the token it used.
func sendBatch(t *testing.T, h *harness, w, each int) string {
	r := h.stable(DefaultAppID, DefaultSecret, false)
	for i := range each {
		m := message(fmt.Sprintf("o-%d", w), fmt.Sprintf("w%d-%d", w, i))
		first := h.send(r.AccessToken, m)
		if i%4 != 0 {
			continue
		}
		if again := h.send(r.AccessToken, m); again.MsgID != first.MsgID || first.Errcode != 0 {
			t.Errorf("resend of %s: msgid %d, first %d (errcode %d)",
				m.ClientMsgID, again.MsgID, first.MsgID, first.Errcode)
		}
	}
	return r.AccessToken
}

func checkEachOnce(t *testing.T, srv *Server, deliveries, duplicates int) {
	t.Helper()
	st := srv.Stats()
	if st.Deliveries != deliveries || st.DuplicatesSuppressed != duplicates ||
		st.SendAttempts != deliveries+duplicates || len(st.PerKey) != deliveries {
		t.Fatalf("deliveries %d, duplicates %d, attempts %d, keys %d",
			st.Deliveries, st.DuplicatesSuppressed, st.SendAttempts, len(st.PerKey))
	}
	for k, n := range st.PerKey {
		if n != 1 {
			t.Fatalf("%v delivered %d times", k, n)
		}
	}

	ids := map[int64]bool{}
	for _, d := range srv.Deliveries() {
		ids[d.MsgID] = true
	}
	if len(ids) != deliveries || st.PerSecond[start.Unix()] != deliveries {
		t.Fatalf("%d distinct msgids, per second %v", len(ids), st.PerSecond)
	}
}

func TestMaxInWindowFindsTheBusiestStretch(t *testing.T) {
	t.Parallel()
	at := func(ms ...int) []Delivery {
		var ds []Delivery
		for _, m := range ms {
			ds = append(ds, Delivery{At: start.Add(time.Duration(m) * time.Millisecond)})
		}
		return ds
	}
	tests := []struct {
		name string
		ds   []Delivery
		want int
	}{
		{"none", nil, 0},
		{"one", at(5), 1},
		{"straddling a second boundary", at(900, 1000, 1100, 1899, 2500), 4},
		{"window end is exclusive", at(0, 1000), 1},
		{"unsorted input", at(1500, 100, 1000, 200), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MaxInWindow(tt.ds, time.Second); got != tt.want {
				t.Fatalf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPeakSecondIsTheBusiestCalendarSecond(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})
	token := h.token()

	for i := range 5 {
		if i == 3 {
			h.srv.Advance(time.Second)
		}
		h.send(token, message("o-1", ""))
	}
	st := h.srv.Stats()
	if st.PeakSecond() != 3 || st.PerSecond[start.Unix()+1] != 2 {
		t.Fatalf("per second %v", st.PerSecond)
	}
}
