package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/wxnotify/wxnotify/wechat"
)

// Action is what the worker does with the outcome of one send attempt.
type Action int

const (
	// Delivered: WeChat accepted the message.
	Delivered Action = iota
	// Retry: a transient failure; retry with backoff, same client_msg_id.
	Retry
	// Drop: permanent for this message; archive it with the reason, never
	// retry.
	Drop
	// StopAccount: the account or its configuration is broken; stop
	// sending for the account and keep the task until it resumes.
	StopAccount
	// StopTemplate: the template is banned; stop sending that template
	// and keep its tasks.
	StopTemplate
	// SlowAccount: the per-minute quota ran out; the whole account waits
	// about a minute.
	SlowAccount
	// DelayRecipient: this openid gets messages too often; only this
	// message waits.
	DelayRecipient
	// QuotaExhausted: the daily quota ran out; the account waits for the
	// reset without consuming retries.
	QuotaExhausted
	// AlreadySent: WeChat reports the message as a duplicate of one it
	// already sent; complete the task without sending again.
	AlreadySent
	// Unknown: an errcode the table does not know; a few retries, then
	// archive.
	Unknown
)

var actionNames = [...]string{
	Delivered:      "delivered",
	Retry:          "retry",
	Drop:           "drop",
	StopAccount:    "stop_account",
	StopTemplate:   "stop_template",
	SlowAccount:    "slow_account",
	DelayRecipient: "delay_recipient",
	QuotaExhausted: "quota_exhausted",
	AlreadySent:    "already_sent",
	Unknown:        "unknown",
}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// rule is one row of the errcode table: the action and the words an
// operator reads in asynqmon and the logs.
type rule struct {
	action Action
	reason string
}

// errcodeRules maps every errcode in the README's errcode table to an
// action. Token rejections (40001, 40014, 42001) reach this table only
// after the client's single refresh-and-replay also failed, so they are
// transient here.
var errcodeRules = map[int]rule{
	wechat.CodeSystemBusy:        {Retry, "wechat system busy"},
	wechat.CodeSystemError:       {Retry, "wechat system error"},
	wechat.CodeInvalidCredential: {Retry, "access_token rejected after a refresh"},
	wechat.CodeInvalidToken:      {Retry, "access_token rejected after a refresh"},
	wechat.CodeTokenExpired:      {Retry, "access_token expired after a refresh"},
	wechat.CodeTokenMissing:      {Retry, "access_token missing"},

	wechat.CodeInvalidOpenID:     {Drop, "invalid openid for this account"},
	wechat.CodeNotSubscribed:     {Drop, "recipient does not follow the account"},
	wechat.CodeBlacklisted:       {Drop, "recipient is on the account's blacklist"},
	wechat.CodeUserRefused:       {Drop, "recipient refuses messages"},
	wechat.CodeUserUnauthorized:  {Drop, "user has not authorised the account"},
	wechat.CodeTemplateIDSize:    {Drop, "template_id is empty or misspelt"},
	wechat.CodeInvalidTemplateID: {Drop, "template_id is not one of this account's templates"},
	wechat.CodeContentBlocked:    {Drop, "message blocked for illegal content"},
	wechat.CodeArgumentInvalid:   {Drop, "a data value fails the template's rules"},
	wechat.CodeDataFormat:        {Drop, "request body is not valid JSON"},
	wechat.CodeIllegalChars:      {Drop, "request has illegal \\uxxxx characters"},
	wechat.CodeAPIUnsupported:    {Drop, "api no longer supported"},
	wechat.CodeInvalidGrantType:  {Drop, "invalid grant_type"},

	wechat.CodeInvalidAppID:      {StopAccount, "appid is invalid"},
	wechat.CodeInvalidSecret:     {StopAccount, "appsecret is invalid"},
	wechat.CodeIPNotWhitelisted:  {StopAccount, "worker ip is not on the account's api whitelist"},
	wechat.CodeSecretFrozen:      {StopAccount, "appsecret is frozen"},
	wechat.CodeAPIUnauthorized:   {StopAccount, "account lacks the template message permission"},
	wechat.CodeAPIForbidden:      {StopAccount, "api banned for this account"},
	wechat.CodeUserLimited:       {StopAccount, "account restricted after a violation"},
	wechat.CodeIPNeedsConfirm:    {StopAccount, "calls from this ip need admin confirmation"},
	wechat.CodeIPWaitConfirm4:    {StopAccount, "waiting for admin confirmation of this ip"},
	wechat.CodeIPWaitConfirm5:    {StopAccount, "waiting for admin confirmation of this ip"},
	wechat.CodeIPRefused24h:      {StopAccount, "admin refused this ip"},
	wechat.CodeIPRefused1h:       {StopAccount, "admin refused this ip"},
	wechat.CodeTemplateBanned:    {StopTemplate, "template is banned"},
	wechat.CodeMinuteQuota:       {SlowAccount, "per-minute quota reached"},
	wechat.CodeOpenIDTooFrequent: {DelayRecipient, "too many messages to this openid"},
	wechat.CodeDailyQuota:        {QuotaExhausted, "daily quota reached"},
	wechat.CodeDuplicateIn60s:    {AlreadySent, "wechat reports a duplicate within 60 s"},
}

// Decision is the classification of one send attempt.
type Decision struct {
	Action Action
	// Code is WeChat's errcode, 0 when the failure had none.
	Code int
	// Reason is a short lowercase sentence for operators, e.g.
	// "errcode 43004: recipient does not follow the account".
	Reason string
}

// Classify maps the error of one send attempt to the action the worker
// takes. A nil error is Delivered.
func Classify(err error) Decision {
	if err == nil {
		return Decision{Action: Delivered}
	}

	var we *wechat.Error
	if errors.As(err, &we) {
		if we.Op == wechat.OpFetchToken {
			return classifyTokenEndpoint(we)
		}
		r, ok := errcodeRules[we.Code]
		if !ok {
			return Decision{Unknown, we.Code, fmt.Sprintf("errcode %d: %s", we.Code, we.Message)}
		}
		return Decision{r.action, we.Code, fmt.Sprintf("errcode %d: %s", we.Code, r.reason)}
	}

	var se *wechat.StatusError
	if errors.As(err, &se) {
		if se.StatusCode >= 500 || se.StatusCode == 429 {
			return Decision{Action: Retry, Reason: fmt.Sprintf("http status %d", se.StatusCode)}
		}
		return Decision{Action: Unknown, Reason: fmt.Sprintf("http status %d", se.StatusCode)}
	}

	var te *wechat.TransportError
	timedOut := errors.Is(err, context.DeadlineExceeded) || errors.As(err, &te) && te.Timeout()
	switch {
	case timedOut:
		return Decision{Action: Retry, Reason: "timeout waiting for wechat"}
	case te != nil:
		return Decision{Action: Retry, Reason: "no answer from wechat"}
	}

	var de *wechat.DecodeError
	if errors.As(err, &de) {
		return Decision{Action: Retry, Reason: "unreadable answer from wechat"}
	}

	return Decision{Action: Retry, Reason: "send failed"}
}

// classifyTokenEndpoint maps an errcode the token endpoint answered. There
// a token-rejection code means the credentials are wrong (40001: bad
// secret), so it stops the account like any other configuration error;
// WeChat's own busy codes stay transient.
func classifyTokenEndpoint(we *wechat.Error) Decision {
	reason := fmt.Sprintf("errcode %d from the token endpoint: %s", we.Code, we.Message)
	switch r, ok := errcodeRules[we.Code]; {
	case we.Code == wechat.CodeSystemBusy || we.Code == wechat.CodeSystemError:
		return Decision{Retry, we.Code, reason}
	case we.Code == wechat.CodeDailyQuota:
		return Decision{QuotaExhausted, we.Code, reason}
	case ok && r.action == StopAccount:
		return Decision{StopAccount, we.Code, fmt.Sprintf("errcode %d: %s", we.Code, r.reason)}
	}
	return Decision{StopAccount, we.Code, reason}
}

// KnownCodes lists every errcode the table classifies, for documentation
// and tests.
func KnownCodes() []int {
	codes := make([]int, 0, len(errcodeRules))
	for c := range errcodeRules {
		codes = append(codes, c)
	}
	return codes
}
