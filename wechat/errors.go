package wechat

import (
	"errors"
	"fmt"
	"strings"
)

// Errcodes the worker acts on. WeChat answers errors as a non-zero errcode
// inside an HTTP 200 body; see docs/errcodes in the README for what the
// worker does with each.
const (
	CodeSystemBusy        = -1    // system busy; retry with backoff
	CodeSystemError       = -1000 // undocumented system error; retry with backoff
	CodeInvalidCredential = 40001 // token invalid or not latest (token endpoint: bad secret)
	CodeInvalidGrantType  = 40002 // grant_type wrong: a bug
	CodeInvalidOpenID     = 40003 // openid malformed or of another account
	CodeInvalidAppID      = 40013 // appid unknown
	CodeInvalidToken      = 40014 // access_token malformed
	CodeIllegalChars      = 40033 // \uxxxx escapes in the body
	CodeTemplateIDSize    = 40036 // template_id empty or misspelt field
	CodeInvalidTemplateID = 40037 // template deleted, of another account, or a subscription id
	CodeInvalidSecret     = 40125 // AppSecret wrong
	CodeIPNotWhitelisted  = 40164 // caller IP not on the API whitelist; errmsg carries the IP
	CodeDuplicateIn60s    = 40241 // undocumented: message is a duplicate within 60 s
	CodeSecretFrozen      = 40243 // AppSecret frozen in the console
	CodeContentBlocked    = 40249 // template message blocked for illegal content
	CodeTokenMissing      = 41001 // access_token missing
	CodeTokenExpired      = 42001 // access_token expired
	CodeNotSubscribed     = 43004 // recipient does not follow the account
	CodeBlacklisted       = 43019 // recipient is on the account's blacklist
	CodeUserRefused       = 43101 // recipient refuses messages
	CodeTemplateBanned    = 43116 // template banned
	CodeOpenIDTooFrequent = 43117 // too many messages to this openid; try later
	CodeDailyQuota        = 45009 // daily API quota reached
	CodeMinuteQuota       = 45011 // per-minute quota reached; slow down
	CodeAPIUnsupported    = 45109 // API retired
	CodeDataFormat        = 47001 // body is not valid JSON
	CodeArgumentInvalid   = 47003 // a data value fails the template's rules
	CodeAPIUnauthorized   = 48001 // account lacks the template permission
	CodeAPIForbidden      = 48004 // API banned for irregularities
	CodeUserUnauthorized  = 50001 // third-party authorisation missing
	CodeUserLimited       = 50002 // account restricted after a violation
	CodeIPNeedsConfirm    = 89503 // admin must confirm calls from this IP
	CodeIPWaitConfirm4    = 89504 // waiting for admin confirmation
	CodeIPWaitConfirm5    = 89505 // waiting for admin confirmation
	CodeIPRefused24h      = 89506 // admin refused this IP; retry after 24 h
	CodeIPRefused1h       = 89507 // admin refused this IP; retry after 1 h
)

// The operations an Error's Op names.
const (
	OpSendTemplate = "send template"
	OpFetchToken   = "fetch token"
)

// Error is a non-zero errcode answered by WeChat. It never holds the
// access_token or the AppSecret, so it is safe to store and show.
type Error struct {
	// Op is what was being done: "send template", "fetch token".
	Op string
	// Code is WeChat's errcode.
	Code int
	// Message is errmsg without its trailing "rid: ..." part.
	Message string
	// RID is the request id WeChat appended to errmsg, if any; it can be
	// looked up with /cgi-bin/openapi/rid/get for 7 days.
	RID string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("wechat: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "errcode %d", e.Code)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RID != "" {
		b.WriteString(" (rid ")
		b.WriteString(e.RID)
		b.WriteString(")")
	}
	return b.String()
}

// StatusError is an HTTP answer other than 200 from WeChat or whatever sits
// in front of it (a proxy, a load balancer).
type StatusError struct {
	Op         string
	StatusCode int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: http status %d", e.Op, e.StatusCode)
}

// TransportError is a failure to get any answer: DNS, connect, TLS, reset,
// or a timeout. The request may or may not have reached WeChat, so a send
// that failed this way must be retried with the same client_msg_id.
type TransportError struct {
	Op string
	// Err is the underlying error with the request URL (which carries the
	// access_token) removed.
	Err error
}

func (e *TransportError) Error() string { return e.Op + ": " + e.Err.Error() }

func (e *TransportError) Unwrap() error { return e.Err }

// Timeout reports whether the failure was a timeout, including the
// caller's context deadline.
func (e *TransportError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}

// DecodeError is an HTTP 200 whose body is not the JSON WeChat sends.
type DecodeError struct {
	Op  string
	Err error
}

func (e *DecodeError) Error() string { return e.Op + ": decode response: " + e.Err.Error() }

func (e *DecodeError) Unwrap() error { return e.Err }

// Code returns the errcode carried by err, and false when err holds no
// *Error.
func Code(err error) (int, bool) {
	var we *Error
	if errors.As(err, &we) {
		return we.Code, true
	}
	return 0, false
}

// IsTokenRejected reports whether code means the access_token itself was
// refused (40001, 40014, 42001), so a fresh token may succeed.
func IsTokenRejected(code int) bool {
	switch code {
	case CodeInvalidCredential, CodeInvalidToken, CodeTokenExpired:
		return true
	}
	return false
}
