package wechat_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/wechat"
)

const okAnswer = `{"errcode":0,"errmsg":"ok","msgid":200228332}`

func sampleMessage() *wechat.TemplateMessage {
	return &wechat.TemplateMessage{
		ToUser:     "oUser1",
		TemplateID: "tmpl-1",
		Data:       map[string]wechat.DataItem{"thing1": {Value: "parcel"}},
	}
}

func TestSendTemplatePostsMessageWithToken(t *testing.T) {
	t.Parallel()
	srv := newAPIServer(t, okAnswer)
	c, _ := newTestClient(srv.URL, "T1")

	id, err := c.SendTemplate(context.Background(), sampleMessage())
	if err != nil {
		t.Fatalf("SendTemplate: %v", err)
	}
	if id != 200228332 {
		t.Errorf("msgid = %d, want 200228332", id)
	}

	reqs := srv.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	got := reqs[0]
	if got.Method != http.MethodPost || got.Path != "/cgi-bin/message/template/send" {
		t.Errorf("request = %s %s, want POST /cgi-bin/message/template/send",
			got.Method, got.Path)
	}
	if tok := got.Query.Get("access_token"); tok != "T1" {
		t.Errorf("access_token = %q, want T1", tok)
	}
	if got.ContentType != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got.ContentType)
	}
}

func TestSendTemplateEncodesBodyAsWeChatExpects(t *testing.T) {
	t.Parallel()
	full := &wechat.TemplateMessage{
		ToUser:      "oUser1",
		TemplateID:  "tmpl-1",
		URL:         "https://shop.example/o?id=7&from=<wx>",
		MiniProgram: &wechat.MiniProgram{AppID: "wxmini", PagePath: "pages/o?id=7&a=b"},
		Data: map[string]wechat.DataItem{
			"thing1":  {Value: "Tom & Jerry"},
			"amount2": {Value: "¥12.50", Color: "#173177"},
		},
		ClientMsgID: "task-42",
	}
	tests := []struct {
		name string
		msg  *wechat.TemplateMessage
		want string
	}{
		{
			name: "optional fields omitted when empty",
			msg:  sampleMessage(),
			want: `{"touser":"oUser1","template_id":"tmpl-1","data":{"thing1":{"value":"parcel"}}}`,
		},
		{
			name: "all fields, html characters unescaped",
			msg:  full,
			want: `{"touser":"oUser1","template_id":"tmpl-1",` +
				`"url":"https://shop.example/o?id=7&from=<wx>",` +
				`"miniprogram":{"appid":"wxmini","pagepath":"pages/o?id=7&a=b"},` +
				`"data":{"amount2":{"value":"¥12.50","color":"#173177"},` +
				`"thing1":{"value":"Tom & Jerry"}},"client_msg_id":"task-42"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newAPIServer(t, okAnswer)
			c, _ := newTestClient(srv.URL, "T1")

			if _, err := c.SendTemplate(context.Background(), tt.msg); err != nil {
				t.Fatalf("SendTemplate: %v", err)
			}
			if body := srv.requests()[0].Body; body != tt.want {
				t.Errorf("body\n got %s\nwant %s", body, tt.want)
			}
		})
	}
}

func TestSendTemplateDoesNotEscapeHTML(t *testing.T) {
	t.Parallel()
	srv := newAPIServer(t, okAnswer)
	c, _ := newTestClient(srv.URL, "T1")
	msg := sampleMessage()
	msg.URL = "https://a.example/?x=1&y=<2>"

	if _, err := c.SendTemplate(context.Background(), msg); err != nil {
		t.Fatalf("SendTemplate: %v", err)
	}

	body := srv.requests()[0].Body
	if strings.Contains(body, `\u00`) {
		t.Errorf("body has \\u00xx escapes: %s", body)
	}
	if !strings.Contains(body, `"url":"https://a.example/?x=1&y=<2>"`) {
		t.Errorf("body lost the raw url: %s", body)
	}
}

func TestSendTemplateDecodesLargeMsgID(t *testing.T) {
	t.Parallel()
	srv := newAPIServer(t, `{"errcode":0,"errmsg":"ok","msgid":3662956322040938501}`)
	c, _ := newTestClient(srv.URL, "T1")

	id, err := c.SendTemplate(context.Background(), sampleMessage())
	if err != nil {
		t.Fatalf("SendTemplate: %v", err)
	}
	if id != 3662956322040938501 {
		t.Errorf("msgid = %d, want 3662956322040938501", id)
	}
}

func TestSendTemplateRefreshesTokenOnce(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"40001", "40014", "42001"} {
		t.Run(code, func(t *testing.T) {
			t.Parallel()
			rejected := `{"errcode":` + code + `,"errmsg":"token rejected rid: a-b-c"}`
			srv := newAPIServer(t, rejected, okAnswer)
			c, ts := newTestClient(srv.URL, "OLD", "NEW")

			id, err := c.SendTemplate(context.Background(), sampleMessage())
			if err != nil {
				t.Fatalf("SendTemplate: %v", err)
			}
			if id != 200228332 {
				t.Errorf("msgid = %d, want 200228332", id)
			}

			assertTokensSent(t, srv, "OLD", "NEW")
			assertInvalidated(t, ts, "OLD")
		})
	}
}

func TestSendTemplateReturnsSecondTokenRejection(t *testing.T) {
	t.Parallel()
	srv := newAPIServer(t, `{"errcode":42001,"errmsg":"access_token expired rid: 1-2-3"}`)
	c, ts := newTestClient(srv.URL, "OLD", "NEW")

	_, err := c.SendTemplate(context.Background(), sampleMessage())

	var we *wechat.Error
	if !errors.As(err, &we) || we.Code != wechat.CodeTokenExpired {
		t.Fatalf("err = %v, want *Error with code 42001", err)
	}
	assertTokensSent(t, srv, "OLD", "NEW")
	assertInvalidated(t, ts, "OLD")
}

func TestSendTemplateDoesNotReplayOtherErrcodes(t *testing.T) {
	t.Parallel()
	srv := newAPIServer(t,
		`{"errcode":43004,"errmsg":"require subscribe rid: 64b7a1c2-1f2e3d4c-5b6a7988"}`)
	c, ts := newTestClient(srv.URL, "T1", "T2")

	id, err := c.SendTemplate(context.Background(), sampleMessage())

	want := &wechat.Error{
		Op:      "send template",
		Code:    wechat.CodeNotSubscribed,
		Message: "require subscribe",
		RID:     "64b7a1c2-1f2e3d4c-5b6a7988",
	}
	var we *wechat.Error
	if !errors.As(err, &we) || *we != *want {
		t.Fatalf("err = %#v, want %#v", err, want)
	}
	if id != 0 {
		t.Errorf("msgid = %d, want 0 on error", id)
	}
	assertTokensSent(t, srv, "T1")
	assertInvalidated(t, ts)
}

func TestSendTemplateReportsUnusableAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		body   string
		check  func(error) bool
	}{
		{"status 502", http.StatusBadGateway, "bad gateway", isStatus(502)},
		{"status 404", http.StatusNotFound, `{"errcode":0}`, isStatus(404)},
		{"html page", http.StatusOK, "<html>busy</html>", isDecode},
		{"truncated json", http.StatusOK, `{"errcode":0,"msgid":12`, isDecode},
		{"msgid as string", http.StatusOK, `{"errcode":0,"msgid":"12"}`, isDecode},
		{"errcode 0 without msgid", http.StatusOK, `{"errcode":0,"errmsg":"ok"}`, isDecode},
		{"body over 1 MiB", http.StatusOK, `{"errmsg":"` + strings.Repeat("x", 1<<20) + `"}`,
			isDecodeSaying("larger than")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newHandlerServer(t, func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			c, _ := newTestClient(srv.URL, "T1")

			_, err := c.SendTemplate(context.Background(), sampleMessage())
			if !tt.check(err) {
				t.Errorf("err = %T %v, wrong type", err, err)
			}
		})
	}
}

func TestSendTemplateReportsTransportFailure(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(closedServerURL(t), "T1")

	_, err := c.SendTemplate(context.Background(), sampleMessage())

	var te *wechat.TransportError
	if !errors.As(err, &te) {
		t.Fatalf("err = %T %v, want *TransportError", err, err)
	}
	if te.Timeout() {
		t.Errorf("refused connection reported as a timeout")
	}
}

func TestSendTemplateStopsWhenContextIsCancelled(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	srv := newHangingServer(t, arrived)
	c, _ := newTestClient(srv.URL, "T1")
	ctx, cancel := context.WithCancel(context.Background())

	go func() {
		<-arrived
		cancel()
	}()
	_, err := c.SendTemplate(ctx, sampleMessage())

	var te *wechat.TransportError
	if !errors.As(err, &te) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want *TransportError wrapping context.Canceled", err)
	}
}

func TestSendTemplateReportsDeadlineAsTimeout(t *testing.T) {
	t.Parallel()
	srv := newHangingServer(t, nil)
	c, _ := newTestClient(srv.URL, "T1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()

	_, err := c.SendTemplate(ctx, sampleMessage())

	var te *wechat.TransportError
	if !errors.As(err, &te) || !te.Timeout() {
		t.Fatalf("err = %v, want a *TransportError that is a timeout", err)
	}
}

func TestSendTemplateReturnsTokenSourceError(t *testing.T) {
	t.Parallel()
	srv := newAPIServer(t, okAnswer)
	c := wechat.NewClient(&stubSource{err: errBoom}, wechat.WithBaseURL(srv.URL))

	_, err := c.SendTemplate(context.Background(), sampleMessage())

	if !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want it to wrap the token source error", err)
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("made %d requests without a token", n)
	}
}

func TestSendTemplateRejectsNilMessage(t *testing.T) {
	t.Parallel()
	srv := newAPIServer(t, okAnswer)
	c, _ := newTestClient(srv.URL, "T1")

	if _, err := c.SendTemplate(context.Background(), nil); err == nil {
		t.Fatal("SendTemplate(nil) succeeded")
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("made %d requests for a nil message", n)
	}
}

func TestWithBaseURLToleratesTrailingSlash(t *testing.T) {
	t.Parallel()
	srv := newAPIServer(t, okAnswer)
	c, _ := newTestClient(srv.URL+"/", "T1")

	if _, err := c.SendTemplate(context.Background(), sampleMessage()); err != nil {
		t.Fatalf("SendTemplate: %v", err)
	}
	if p := srv.requests()[0].Path; p != "/cgi-bin/message/template/send" {
		t.Errorf("path = %q, want /cgi-bin/message/template/send", p)
	}
}

func TestWithHTTPClientIsUsed(t *testing.T) {
	t.Parallel()
	srv := newAPIServer(t, okAnswer)
	rt := &countingTransport{next: http.DefaultTransport}
	c := wechat.NewClient(&stubSource{tokens: []string{"T1"}},
		wechat.WithBaseURL(srv.URL),
		wechat.WithHTTPClient(&http.Client{Transport: rt}))

	if _, err := c.SendTemplate(context.Background(), sampleMessage()); err != nil {
		t.Fatalf("SendTemplate: %v", err)
	}
	if rt.n != 1 {
		t.Errorf("custom transport saw %d requests, want 1", rt.n)
	}
}

func TestClientWithMemorySourceRefetchesAfterRejection(t *testing.T) {
	t.Parallel()
	var fetches atomic.Int32
	srv := newHandlerServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cgi-bin/stable_token":
			tok := []string{"", "FIRST", "SECOND"}[min(fetches.Add(1), 2)]
			_, _ = w.Write([]byte(`{"access_token":"` + tok + `","expires_in":7200}`))
		case "/cgi-bin/message/template/send":
			if r.URL.Query().Get("access_token") == "FIRST" {
				_, _ = w.Write([]byte(`{"errcode":40001,"errmsg":"invalid credential"}`))
				return
			}
			_, _ = w.Write([]byte(okAnswer))
		}
	})
	f := wechat.NewTokenFetcher("wxapp", "s3cret", wechat.WithBaseURL(srv.URL))
	c := wechat.NewClient(wechat.NewMemoryTokenSource(f), wechat.WithBaseURL(srv.URL))

	if _, err := c.SendTemplate(context.Background(), sampleMessage()); err != nil {
		t.Fatalf("SendTemplate: %v", err)
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("fetched %d tokens, want 2", n)
	}
}

// newTestClient returns a client of base whose stub source hands out
// tokens in order.
func newTestClient(base string, tokens ...string) (*wechat.Client, *stubSource) {
	ts := &stubSource{tokens: tokens}
	return wechat.NewClient(ts, wechat.WithBaseURL(base)), ts
}

// countingTransport counts round trips; it is used by one goroutine.
type countingTransport struct {
	next http.RoundTripper
	n    int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n++
	return c.next.RoundTrip(r)
}

func assertTokensSent(t *testing.T, srv *apiServer, want ...string) {
	t.Helper()
	reqs := srv.requests()
	got := make([]string, len(reqs))
	for i, r := range reqs {
		got[i] = r.Query.Get("access_token")
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("tokens sent = %q, want %q", got, want)
	}
}

func assertInvalidated(t *testing.T, ts *stubSource, want ...string) {
	t.Helper()
	got := ts.invalidations()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("invalidated = %q, want %q", got, want)
	}
}

func isStatus(code int) func(error) bool {
	return func(err error) bool {
		var se *wechat.StatusError
		return errors.As(err, &se) && se.StatusCode == code
	}
}

func isDecodeSaying(part string) func(error) bool {
	return func(err error) bool {
		return isDecode(err) && strings.Contains(err.Error(), part)
	}
}

func isDecode(err error) bool {
	var de *wechat.DecodeError
	return errors.As(err, &de)
}
