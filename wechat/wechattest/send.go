package wechattest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wxnotify/wxnotify/wechat"
)

// maxBody bounds a request body; anything longer answers 47001.
const maxBody = 1 << 20

// maxOpenIDLen bounds an openid; real ones are 28 characters.
const maxOpenIDLen = 64

func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	// Reading the body first lets net/http notice a client that leaves
	// during a wait, which cancels r.Context().
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	status, before, after := s.planSend()
	if status != 0 {
		writeGatewayError(w, status)
		return
	}
	if !s.wait(r.Context(), before) {
		s.countAbandoned()
		return
	}

	a, msgID := s.admit(s.readSend(r, body, readErr))
	s.wait(r.Context(), after)

	if a.code != 0 {
		s.writeAnswer(w, a)
		return
	}
	writeJSON(w, http.StatusOK, sendBody{Errcode: 0, Errmsg: "ok", MsgID: msgID})
}

// planSend counts the attempt and draws its faults: an HTTP status to
// fail with (or 0), and the waits before and after processing.
func (s *Server) planSend() (status int, before, after time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()

	s.stats.SendAttempts++
	if status = s.faults.gatewayStatus(s.rng); status != 0 {
		s.stats.HTTP5xx++
		return status, 0, 0
	}
	before, after = s.faults.delays(s.rng)
	return 0, before, after
}

// wait sleeps for d and reports whether it slept in full: it stops early
// when the client leaves or the server closes.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()

	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

func (s *Server) countAbandoned() {
	s.mu.Lock()
	defer s.mu.Unlock()

	s.stats.Abandoned++
}

// sendRequest is a template send as read from the wire.
type sendRequest struct {
	token string
	msg   *wechat.TemplateMessage
	// bad is why the request was refused; it is answered only once the
	// token passed, as WeChat does.
	bad answer
}

// readSend checks a send request without taking the lock.
func (s *Server) readSend(r *http.Request, body []byte, readErr error) sendRequest {
	req := sendRequest{token: r.URL.Query().Get("access_token")}
	switch {
	case r.Method != http.MethodPost:
		req.bad = fail(codeRequirePOST)
	case readErr != nil:
		req.bad = fail(wechat.CodeDataFormat)
	default:
		req.msg, req.bad = parseMessage(body)
	}

	if req.bad.code == 0 {
		req.bad = s.validate(req.msg)
	}
	return req
}

func parseMessage(body []byte) (*wechat.TemplateMessage, answer) {
	var m wechat.TemplateMessage
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		return nil, fail(codeEmptyPostData)
	case json.Unmarshal(body, &m) != nil:
		return nil, fail(wechat.CodeDataFormat)
	case hasHTMLEscape(body):
		return nil, fail(wechat.CodeIllegalChars)
	}
	return &m, answer{}
}

// hasHTMLEscape reports whether body holds \u0026, \u003c or \u003e (in
// either case), which Go's encoding/json writes by default and WeChat
// refuses.
func hasHTMLEscape(body []byte) bool {
	rest := body
	for {
		i := bytes.Index(rest, []byte(`\u00`))
		if i < 0 || i+6 > len(rest) {
			return false
		}
		switch strings.ToLower(string(rest[i+4 : i+6])) {
		case "26", "3c", "3e":
			return true
		}
		rest = rest[i+4:]
	}
}

// validate applies WeChat's checks of the message fields.
func (s *Server) validate(m *wechat.TemplateMessage) answer {
	switch {
	case !validOpenID(m.ToUser):
		return fail(wechat.CodeInvalidOpenID)
	case m.TemplateID == "":
		return fail(wechat.CodeTemplateIDSize)
	case s.cfg.Templates != nil && !s.cfg.Templates[m.TemplateID]:
		return fail(wechat.CodeInvalidTemplateID)
	case len(m.Data) == 0:
		return argumentInvalid("data is empty")
	}

	if key, bad := invalidData(m.Data); bad {
		return argumentInvalid("data." + key + ".value invalid")
	}
	return answer{}
}

// argumentInvalid is 47003 with an errmsg naming what is wrong.
func argumentInvalid(what string) answer {
	return answer{code: wechat.CodeArgumentInvalid, msg: "argument invalid! " + what}
}

// validOpenID accepts 1 to 64 characters of [A-Za-z0-9_-], the alphabet
// of real openids (28 characters long).
func validOpenID(id string) bool {
	if id == "" || len(id) > maxOpenIDLen {
		return false
	}
	for _, c := range []byte(id) {
		if !isOpenIDByte(c) {
			return false
		}
	}
	return true
}

func isOpenIDByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return c == '_' || c == '-'
}

// invalidData returns the first key, in sorted order so that the errmsg
// is stable, whose value breaks the rules of its type.
func invalidData(data map[string]wechat.DataItem) (string, bool) {
	first, found := "", false
	for key, item := range data {
		if !validValue(key, item.Value) && (!found || key < first) {
			first, found = key, true
		}
	}
	return first, found
}

// validValue applies the category-template rules, kept simple: no line
// breaks anywhere, and a length cap by the key's type prefix.
func validValue(key, value string) bool {
	if strings.ContainsAny(value, "\r\n") {
		return false
	}
	limit := valueLimit(key)
	return limit == 0 || utf8.RuneCountInString(value) <= limit
}

// valueLimit returns the most runes a value of key may hold; 0 means no
// limit.
func valueLimit(key string) int {
	switch {
	case strings.HasPrefix(key, "thing"), strings.HasPrefix(key, "const"):
		return 20
	case strings.HasPrefix(key, "phrase"):
		return 5
	case strings.HasPrefix(key, "character_string"):
		return 32
	}
	return 0
}

// admit decides a send under the lock and returns its answer and msgid.
func (s *Server) admit(req sendRequest) (answer, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()

	a, msgID := s.decide(req, s.clock.now())
	if a.code != 0 {
		s.stats.Errcodes[a.code]++
	}
	return a, msgID
}

func (s *Server) decide(req sendRequest, now time.Time) (answer, int64) {
	if req.token == "" {
		return fail(wechat.CodeTokenMissing), 0
	}
	t, code := s.tokens.check(req.token, now)
	if code != 0 {
		return fail(code), 0
	}
	if req.bad.code != 0 {
		return req.bad, 0
	}

	m := req.msg
	if a := s.recipientRefusal(m.ToUser); a.code != 0 {
		return a, 0
	}
	if a := s.faults.injected(m.ToUser, m.TemplateID, s.rng); a.code != 0 {
		return a, 0
	}
	return s.deliverOnce(t.appID, m, now)
}

func (s *Server) recipientRefusal(openid string) answer {
	switch {
	case s.cfg.Unfollowed[openid]:
		return fail(wechat.CodeNotSubscribed)
	case s.cfg.Blocked[openid]:
		return fail(wechat.CodeBlacklisted)
	}
	return answer{}
}

// deliverOnce answers a duplicate with its first msgid, applies the
// quotas, and delivers.
func (s *Server) deliverOnce(
	appID string, m *wechat.TemplateMessage, now time.Time,
) (answer, int64) {
	key := DeliveryKey{ToUser: m.ToUser, ClientMsgID: m.ClientMsgID}
	if m.ClientMsgID != "" {
		if msgID, dup := s.seen.lookup(key, now); dup {
			s.stats.DuplicatesSuppressed++
			return answer{}, msgID
		}
	}

	s.limits.roll(now)
	if code := s.limits.refusal(s.faults, m.ToUser); code != 0 {
		return fail(code), 0
	}
	return answer{}, s.deliver(appID, m, now)
}

func (s *Server) deliver(appID string, m *wechat.TemplateMessage, now time.Time) int64 {
	msgID := s.msgID
	s.msgID++
	s.limits.count(m.ToUser)
	s.stats.Deliveries++

	d := Delivery{
		AppID:       appID,
		ToUser:      m.ToUser,
		TemplateID:  m.TemplateID,
		ClientMsgID: m.ClientMsgID,
		MsgID:       msgID,
		URL:         m.URL,
		MiniProgram: m.MiniProgram,
		Data:        m.Data,
		At:          now,
	}
	if m.ClientMsgID != "" {
		s.seen.remember(d.Key(), msgID, now)
	}
	s.rec.add(d, s.cfg.MaxDeliveries)
	return msgID
}
