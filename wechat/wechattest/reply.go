package wechattest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/wxnotify/wxnotify/wechat"
)

// Errcodes the fake answers that package wechat has no constant for.
const (
	codeRequirePOST   = 43002 // the API takes POST only
	codeEmptyPostData = 44002 // the request body is empty
)

// messages holds the errmsg text for each errcode the fake can answer,
// worded as the real platform words it.
var messages = map[int]string{
	wechat.CodeSystemBusy:        "system error",
	wechat.CodeSystemError:       "system error",
	wechat.CodeInvalidCredential: "invalid credential, access_token is invalid or not latest",
	wechat.CodeInvalidGrantType:  "invalid grant_type",
	wechat.CodeInvalidOpenID:     "invalid openid",
	wechat.CodeInvalidAppID:      "invalid appid",
	wechat.CodeInvalidToken:      "invalid access_token",
	wechat.CodeIllegalChars:      "invalid charset, \\uxxxx escapes are not allowed",
	wechat.CodeTemplateIDSize:    "invalid template_id size",
	wechat.CodeInvalidTemplateID: "invalid template_id",
	wechat.CodeInvalidSecret:     "invalid appsecret",
	wechat.CodeDuplicateIn60s:    "The message is duplicate in 60 seconds",
	wechat.CodeSecretFrozen:      "appsecret is frozen",
	wechat.CodeContentBlocked:    "this template msg has been blocked for illegal content",
	wechat.CodeTokenMissing:      "access_token missing",
	wechat.CodeTokenExpired:      "access_token expired",
	codeRequirePOST:              "require POST method",
	codeEmptyPostData:            "empty post data",
	wechat.CodeNotSubscribed:     "require subscribe",
	wechat.CodeBlacklisted:       "require remove blacklist",
	wechat.CodeUserRefused:       "user refuse to accept the msg",
	wechat.CodeTemplateBanned:    "This template_id is banned",
	wechat.CodeOpenIDTooFrequent: "Sending messages to this openid too frequently, please try later",
	wechat.CodeDailyQuota:        "reach max api daily quota limit",
	wechat.CodeMinuteQuota:       "api minute-quota reach limit, must slower, retry next minute",
	wechat.CodeAPIUnsupported:    "This API has been unsupported",
	wechat.CodeDataFormat:        "data format error",
	wechat.CodeArgumentInvalid:   "argument invalid!",
	wechat.CodeAPIUnauthorized:   "api unauthorized",
	wechat.CodeAPIForbidden:      "api forbidden for irregularities",
	wechat.CodeUserUnauthorized:  "user unauthorized",
	wechat.CodeUserLimited:       "user limited",
}

// answer is an errcode reply; the zero answer means "no error".
type answer struct {
	code int
	msg  string
}

// fail builds the answer for code with its usual errmsg.
func fail(code int) answer {
	return answer{code: code, msg: messageFor(code, "")}
}

// messageFor returns custom when set, else the usual errmsg of code.
func messageFor(code int, custom string) string {
	if custom != "" {
		return custom
	}
	if msg, ok := messages[code]; ok {
		return msg
	}
	return fmt.Sprintf("wechattest injected errcode %d", code)
}

// errorBody is an errcode reply as WeChat writes it.
type errorBody struct {
	Errcode int    `json:"errcode"`
	Errmsg  string `json:"errmsg"`
}

// sendBody is the reply of a template send that went through.
type sendBody struct {
	Errcode int    `json:"errcode"`
	Errmsg  string `json:"errmsg"`
	MsgID   int64  `json:"msgid"`
}

// tokenBody is the reply of a token endpoint that issued a token.
type tokenBody struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// writeAnswer writes a as WeChat does: HTTP 200, errmsg ending in a rid.
func (s *Server) writeAnswer(w http.ResponseWriter, a answer) {
	writeJSON(w, http.StatusOK, errorBody{
		Errcode: a.code,
		Errmsg:  a.msg + " rid: " + s.newRID(),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	w.WriteHeader(status)

	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client may be gone; nothing to do about it
}

// writeGatewayError writes what a proxy in front of WeChat sends when
// the backend fails: an HTML page, not JSON.
func writeGatewayError(w http.ResponseWriter, status int) {
	text := fmt.Sprintf("%d %s", status, http.StatusText(status))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<html><head><title>%s</title></head>"+
		"<body><h1>%s</h1><p>wechattest injected fault</p></body></html>\n", text, text)
}

// newRID returns a request id shaped like WeChat's: three groups of eight
// hex digits, the first the current unix second. It takes no lock.
func (s *Server) newRID() string {
	h := mix64(s.ridSeq.Add(1) ^ s.ridSalt)
	sec := uint32(time.Now().Unix())
	return fmt.Sprintf("%08x-%08x-%08x", sec, uint32(h>>32), uint32(h))
}

// mix64 scrambles x (the SplitMix64 finaliser), so that consecutive
// sequence numbers give unrelated-looking rids.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// clientIP returns the caller's address as WeChat would report it.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// whitelistMessage is the 40164 errmsg, which names the caller's IP.
func whitelistMessage(ip string) string {
	v6 := ip
	if parsed := net.ParseIP(ip); parsed != nil && parsed.To4() != nil {
		v6 = "::ffff:" + ip
	}
	return fmt.Sprintf("invalid ip %s ipv6 %s, not in whitelist", ip, v6)
}
