package wechattest

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/wxnotify/wxnotify/wechat"
)

// forgetAfter is how long an expired token is still recognised, and so
// answered with 42001 rather than 40001, before its record is dropped.
const forgetAfter = 24 * time.Hour

// tokenChars is the length of the random part of a token; with its prefix
// a token is 136 characters, about what WeChat hands out.
const tokenChars = 133

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

type tokenKind int

const (
	stableKind tokenKind = iota
	classicKind
)

// issued is one access_token the server handed out.
type issued struct {
	value     string
	appID     string
	gen       uint64 // the account's generation when it was issued
	expiresAt time.Time
	// cutoff, when set, is when the token starts to be refused as "not
	// latest": a newer classic token was issued, or a force_refresh.
	cutoff time.Time
}

// cutAt makes t refused from when on, unless it already is earlier.
func (t *issued) cutAt(when time.Time) {
	if t.cutoff.IsZero() || when.Before(t.cutoff) {
		t.cutoff = when
	}
}

type account struct {
	appID  string
	secret string
	// gen is bumped by RotateToken; tokens of an older gen are refused.
	gen     uint64
	stable  *issued
	classic *issued
}

// tokenStore holds the accounts and every token still recognised. The
// server's mutex guards it.
type tokenStore struct {
	accounts map[string]*account
	byValue  map[string]*issued
	// order lists tokens oldest first, so that forgetting is O(1) each.
	order fifo[*issued]
}

func newTokenStore(secrets map[string]string) *tokenStore {
	ts := &tokenStore{
		accounts: make(map[string]*account, len(secrets)),
		byValue:  make(map[string]*issued),
	}
	for appID, secret := range secrets {
		ts.accounts[appID] = &account{appID: appID, secret: secret}
	}
	return ts
}

// check returns the token called value and 0, or the errcode a send that
// uses it must get.
func (ts *tokenStore) check(value string, now time.Time) (*issued, int) {
	t, ok := ts.byValue[value]
	if !ok {
		return nil, wechat.CodeInvalidCredential
	}
	return t, ts.refusal(t, now)
}

// refusal returns the errcode t is refused with at now, or 0.
func (ts *tokenStore) refusal(t *issued, now time.Time) int {
	if t.gen != ts.accounts[t.appID].gen {
		return wechat.CodeInvalidCredential
	}
	cut := t.cutoff
	if !cut.IsZero() && cut.Before(t.expiresAt) && !now.Before(cut) {
		return wechat.CodeInvalidCredential
	}
	if !now.Before(t.expiresAt) {
		return wechat.CodeTokenExpired
	}
	return 0
}

func (ts *tokenStore) add(t *issued) {
	ts.byValue[t.value] = t
	ts.order.push(t)
}

// forget drops the tokens that expired more than forgetAfter ago.
func (ts *tokenStore) forget(now time.Time) {
	for ts.order.len() > 0 {
		t := ts.order.front()
		if now.Before(t.expiresAt.Add(forgetAfter)) {
			return
		}
		delete(ts.byValue, t.value)
		ts.order.pop()
	}
}

// tokenRequest is what both token endpoints take, as JSON body fields
// (stable_token) or query parameters (token).
type tokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// tokenCall is one call to a token endpoint as read from the wire.
type tokenCall struct {
	tokenRequest
	kind tokenKind
	ip   string // the caller's, for the 40164 errmsg
	bad  answer // why the request was refused before its fields were read
}

func (s *Server) handleStableToken(w http.ResponseWriter, r *http.Request) {
	req, bad := readStableRequest(w, r)
	s.serveToken(w, tokenCall{tokenRequest: req, kind: stableKind, ip: clientIP(r), bad: bad})
}

func (s *Server) handleClassicToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := tokenRequest{
		GrantType: q.Get("grant_type"),
		AppID:     q.Get("appid"),
		Secret:    q.Get("secret"),
	}
	s.serveToken(w, tokenCall{tokenRequest: req, kind: classicKind, ip: clientIP(r)})
}

// readStableRequest reads a stable_token body, or returns why it cannot.
func readStableRequest(w http.ResponseWriter, r *http.Request) (tokenRequest, answer) {
	var req tokenRequest
	if r.Method != http.MethodPost {
		return req, fail(codeRequirePOST)
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	switch {
	case err != nil:
		return req, fail(wechat.CodeDataFormat)
	case len(body) == 0:
		return req, fail(codeEmptyPostData)
	case json.Unmarshal(body, &req) != nil:
		return req, fail(wechat.CodeDataFormat)
	}
	return req, answer{}
}

func (s *Server) serveToken(w http.ResponseWriter, call tokenCall) {
	s.mu.Lock()
	body, a := s.issueToken(call)
	s.mu.Unlock()

	if a.code != 0 {
		s.writeAnswer(w, a)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// issueToken answers one token call; the caller holds s.mu.
func (s *Server) issueToken(call tokenCall) (tokenBody, answer) {
	s.countTokenCall(call.kind, call.ForceRefresh)
	if a := s.tokenRefusal(call); a.code != 0 {
		s.stats.TokenErrcodes[a.code]++
		return tokenBody{}, a
	}

	now := s.clock.now()
	s.tokens.forget(now)
	acc := s.tokens.accounts[call.AppID]
	var t *issued
	if call.kind == stableKind {
		t = s.stableToken(acc, call.ForceRefresh, now)
	} else {
		t = s.classicToken(acc, now)
	}

	left := t.expiresAt.Sub(now) / time.Second
	return tokenBody{AccessToken: t.value, ExpiresIn: int64(left)}, answer{}
}

func (s *Server) countTokenCall(kind tokenKind, force bool) {
	s.stats.TokenCalls++
	if kind == classicKind {
		s.stats.ClassicTokenCalls++
		return
	}
	s.stats.StableTokenCalls++
	if force {
		s.stats.ForceRefreshes++
	}
}

// tokenRefusal returns the errcode a token call must get, or none.
func (s *Server) tokenRefusal(call tokenCall) answer {
	if code := s.faults.TokenErrcode; code != 0 {
		custom := s.faults.TokenErrmsg
		if custom == "" && code == wechat.CodeIPNotWhitelisted {
			custom = whitelistMessage(call.ip)
		}
		return answer{code: code, msg: messageFor(code, custom)}
	}
	if call.bad.code != 0 {
		return call.bad
	}

	acc, ok := s.tokens.accounts[call.AppID]
	switch {
	case call.GrantType != "client_credential":
		return fail(wechat.CodeInvalidGrantType)
	case !ok:
		return fail(wechat.CodeInvalidAppID)
	case call.Secret != acc.secret:
		return fail(wechat.CodeInvalidSecret)
	}
	return answer{}
}

// classicToken issues a new /cgi-bin/token token; the previous one keeps
// working for the overlap.
func (s *Server) classicToken(acc *account, now time.Time) *issued {
	if prev := acc.classic; prev != nil {
		prev.cutAt(now.Add(s.cfg.ClassicOverlap))
	}
	acc.classic = s.mint(acc, classicKind, now)
	return acc.classic
}

// stableToken returns the account's stable token, issuing a new one when
// there is none, it was refused, it entered its rotation window, or force
// is set (which refuses the old one at once).
func (s *Server) stableToken(acc *account, force bool, now time.Time) *issued {
	cur := acc.stable
	if force && cur != nil {
		cur.cutAt(now)
	}

	if cur == nil || s.tokens.refusal(cur, now) != 0 || s.inRotateWindow(cur, now) {
		acc.stable = s.mint(acc, stableKind, now)
	}
	return acc.stable
}

func (s *Server) inRotateWindow(t *issued, now time.Time) bool {
	return !now.Before(t.expiresAt.Add(-s.cfg.StableRotateWindow))
}

func (s *Server) mint(acc *account, kind tokenKind, now time.Time) *issued {
	t := &issued{
		value:     s.tokenValue(kind),
		appID:     acc.appID,
		gen:       acc.gen,
		expiresAt: now.Add(s.cfg.TokenTTL),
	}
	s.tokens.add(t)
	s.stats.TokensIssued++
	return t
}

// tokenValue returns a fresh random token. The prefix tells the kinds
// apart when debugging: "91_" stable, "81_" classic.
func (s *Server) tokenValue(kind tokenKind) string {
	prefix := "91_"
	if kind == classicKind {
		prefix = "81_"
	}

	b := make([]byte, 0, len(prefix)+tokenChars)
	b = append(b, prefix...)
	for len(b) < cap(b) {
		x := s.rng.Uint64()
		for i := 0; i < 10 && len(b) < cap(b); i++ {
			b = append(b, tokenAlphabet[x&63])
			x >>= 6
		}
	}
	return string(b)
}

// RotateToken revokes every token of appid at once, as WeChat does when
// the token is refreshed elsewhere: sends that use one answer 40001, and
// both token endpoints issue a new one on their next call. An unknown
// appid is ignored.
func (s *Server) RotateToken(appid string) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if acc, ok := s.tokens.accounts[appid]; ok {
		acc.gen++
		acc.stable = nil
		acc.classic = nil
	}
}

func (s *Server) hasAccount(appid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()

	_, ok := s.tokens.accounts[appid]
	return ok
}

// IssuedTokens returns every access_token the server has handed out and
// still remembers, so a test can check that none of them leaked into logs
// or stored errors.
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()

	out := make([]string, 0, len(s.tokens.byValue))
	for v := range s.tokens.byValue {
		out = append(out, v)
	}
	return out
}
