package wechattest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/wechat"
)

// start is the instant the tests freeze the server's clock at: a Friday
// morning in Shanghai.
var start = time.Date(2025, 3, 14, 10, 0, 0, 0, shanghai)

var ridSuffix = regexp.MustCompile(` rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$`)

// harness is a fake server on a frozen clock and a client for it.
type harness struct {
	t      *testing.T
	srv    *Server
	client *http.Client
}

func setup(t *testing.T, cfg Config) *harness {
	t.Helper()
	srv := NewTestServer(t, cfg)
	srv.SetNow(start)
	return &harness{t: t, srv: srv, client: &http.Client{Timeout: 10 * time.Second}}
}

// reply is any answer of the fake, decoded.
type reply struct {
	Status      int
	Errcode     int    `json:"errcode"`
	Errmsg      string `json:"errmsg"`
	MsgID       int64  `json:"msgid"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

func (h *harness) do(req *http.Request) reply {
	h.t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("read body: %v", err)
	}
	r := reply{Status: resp.StatusCode}
	if err := json.Unmarshal(body, &r); err != nil {
		h.t.Fatalf("decode %q: %v", body, err)
	}
	return r
}

func (h *harness) post(path string, body []byte) reply {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL()+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return h.do(req)
}

func (h *harness) get(path string) reply {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.srv.URL()+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(req)
}

func (h *harness) stable(appid, secret string, force bool) reply {
	h.t.Helper()
	body := mustJSON(h.t, tokenRequest{
		GrantType:    "client_credential",
		AppID:        appid,
		Secret:       secret,
		ForceRefresh: force,
	})
	return h.post("/cgi-bin/stable_token", body)
}

func (h *harness) classic(appid, secret string) reply {
	h.t.Helper()
	q := url.Values{"grant_type": {"client_credential"}, "appid": {appid}, "secret": {secret}}
	return h.get("/cgi-bin/token?" + q.Encode())
}

// token returns a stable token of the default account.
func (h *harness) token() string {
	h.t.Helper()
	r := h.stable(DefaultAppID, DefaultSecret, false)
	if r.AccessToken == "" {
		h.t.Fatalf("stable_token answered %d %q", r.Errcode, r.Errmsg)
	}
	return r.AccessToken
}

// sendURL is the send endpoint with token.
func (h *harness) sendURL(token string) string {
	return h.srv.URL() + sendPath(token)
}

func sendPath(token string) string {
	return "/cgi-bin/message/template/send?access_token=" + url.QueryEscape(token)
}

// sendRaw posts body as a template send with token.
func (h *harness) sendRaw(token string, body []byte) reply {
	h.t.Helper()
	return h.post(sendPath(token), body)
}

func (h *harness) send(token string, m wechat.TemplateMessage) reply {
	h.t.Helper()
	return h.sendRaw(token, mustJSON(h.t, m))
}

// message returns a valid template message to openid.
func message(openid, clientMsgID string) wechat.TemplateMessage {
	return wechat.TemplateMessage{
		ToUser:     openid,
		TemplateID: "tmpl-bill",
		Data: map[string]wechat.DataItem{
			"thing1":            {Value: "Electricity bill"},
			"amount2":           {Value: "¥128.50"},
			"character_string3": {Value: "INV-2025-0042"},
		},
		ClientMsgID: clientMsgID,
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// wantCode fails the test unless r is an HTTP 200 answer with code and,
// for errors, an errmsg ending in a rid.
func wantCode(t *testing.T, r reply, code int) {
	t.Helper()
	if r.Status != http.StatusOK || r.Errcode != code {
		t.Fatalf("got HTTP %d errcode %d %q, want errcode %d",
			r.Status, r.Errcode, r.Errmsg, code)
	}
	if code != 0 && !ridSuffix.MatchString(r.Errmsg) {
		t.Fatalf("errmsg %q does not end in a rid", r.Errmsg)
	}
}

// eventually waits, for at most ten seconds, until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
