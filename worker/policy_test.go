package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/wechat"
)

func TestClassifyErrcodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		code int
		want Action
	}{
		{wechat.CodeSystemBusy, Retry},
		{wechat.CodeSystemError, Retry},
		{wechat.CodeInvalidCredential, Retry},
		{wechat.CodeInvalidToken, Retry},
		{wechat.CodeTokenExpired, Retry},
		{wechat.CodeNotSubscribed, Drop},
		{wechat.CodeInvalidOpenID, Drop},
		{wechat.CodeBlacklisted, Drop},
		{wechat.CodeUserRefused, Drop},
		{wechat.CodeTemplateIDSize, Drop},
		{wechat.CodeInvalidTemplateID, Drop},
		{wechat.CodeArgumentInvalid, Drop},
		{wechat.CodeDataFormat, Drop},
		{wechat.CodeIllegalChars, Drop},
		{wechat.CodeContentBlocked, Drop},
		{wechat.CodeInvalidAppID, StopAccount},
		{wechat.CodeInvalidSecret, StopAccount},
		{wechat.CodeIPNotWhitelisted, StopAccount},
		{wechat.CodeSecretFrozen, StopAccount},
		{wechat.CodeAPIUnauthorized, StopAccount},
		{wechat.CodeAPIForbidden, StopAccount},
		{wechat.CodeUserLimited, StopAccount},
		{wechat.CodeIPNeedsConfirm, StopAccount},
		{wechat.CodeIPRefused24h, StopAccount},
		{wechat.CodeIPRefused1h, StopAccount},
		{wechat.CodeTemplateBanned, StopTemplate},
		{wechat.CodeMinuteQuota, SlowAccount},
		{wechat.CodeOpenIDTooFrequent, DelayRecipient},
		{wechat.CodeDailyQuota, QuotaExhausted},
		{wechat.CodeDuplicateIn60s, AlreadySent},
		{99999, Unknown},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			err := fmt.Errorf("send template: %w",
				&wechat.Error{Op: "send template", Code: tc.code, Message: "m"})
			d := Classify(err)
			if d.Action != tc.want || d.Code != tc.code {
				t.Fatalf("Classify(errcode %d) = %v/%d, want %v", tc.code, d.Action, d.Code, tc.want)
			}
			if !strings.HasPrefix(d.Reason, "errcode "+strconv.Itoa(tc.code)+": ") {
				t.Fatalf("reason %q does not start with the errcode", d.Reason)
			}
		})
	}
}

func TestClassifyNonErrcodeFailures(t *testing.T) {
	t.Parallel()
	timeout := &net.DNSError{IsTimeout: true}
	cases := []struct {
		name string
		err  error
		want Action
	}{
		{"nil", nil, Delivered},
		{"http 500", &wechat.StatusError{Op: "send template", StatusCode: 500}, Retry},
		{"http 502", &wechat.StatusError{Op: "send template", StatusCode: 502}, Retry},
		{"http 429", &wechat.StatusError{Op: "send template", StatusCode: 429}, Retry},
		{"http 404", &wechat.StatusError{Op: "send template", StatusCode: 404}, Unknown},
		{"timeout", &wechat.TransportError{Op: "send template", Err: timeout}, Retry},
		{"reset", &wechat.TransportError{Op: "send template", Err: errors.New("reset")}, Retry},
		{"deadline", context.DeadlineExceeded, Retry},
		{"decode", &wechat.DecodeError{Op: "send template", Err: errors.New("eof")}, Retry},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.err).Action; got != tc.want {
				t.Fatalf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestReadmeErrcodeTableMatchesPolicy keeps the README's errcode table and
// the code's table one and the same: every row the README lists is
// classified to the action it states, and every code the worker knows is
// in the README.
func TestReadmeErrcodeTableMatchesPolicy(t *testing.T) {
	t.Parallel()
	rows := readmeErrcodes(t)
	if len(rows) < 30 {
		t.Fatalf("found only %d errcode rows in README.md", len(rows))
	}
	for code, action := range rows {
		err := &wechat.Error{Code: code}
		if got := Classify(err).Action.String(); got != action {
			t.Errorf("README says errcode %d -> %s, the worker does %s", code, action, got)
		}
	}
	for _, code := range KnownCodes() {
		if _, ok := rows[code]; !ok {
			t.Errorf("errcode %d is classified by the worker but missing from the README table", code)
		}
	}
}

func readmeErrcodes(t *testing.T) map[int]string {
	t.Helper()
	f, err := os.Open("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile(`^\| (-?\d+) \| .* \| ([a-z_]+) \|$`)
	out := map[int]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := row.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		code, _ := strconv.Atoi(m[1])
		out[code] = m[2]
	}
	return out
}

func TestBackoffStaysWithinCeiling(t *testing.T) {
	t.Parallel()
	b := Backoff{Base: DefaultBackoffBase, Cap: DefaultBackoffCap}
	for n := 0; n < 60; n++ {
		ceiling := DefaultBackoffCap
		if n < 20 && DefaultBackoffBase<<n < ceiling {
			ceiling = DefaultBackoffBase << n
		}
		for range 50 {
			if d := b.Delay(n); d < 0 || d > ceiling {
				t.Fatalf("Delay(%d) = %s, outside [0, %s]", n, d, ceiling)
			}
		}
	}
}

func TestDelayErrorIsNotAFailure(t *testing.T) {
	t.Parallel()
	wait := fmt.Errorf("send: %w", &DelayError{Delay: 90_000_000_000, Reason: "quota"})
	if IsFailure(wait) {
		t.Fatal("a DelayError counted as a failure: it would consume a retry")
	}
	if got := (Backoff{}).RetryDelay(3, wait, nil); got != 90_000_000_000 {
		t.Fatalf("RetryDelay = %s, want the DelayError's own 1m30s", got)
	}
	if !IsFailure(errors.New("boom")) {
		t.Fatal("a plain error must count as a failure")
	}
}

func TestClassifyTokenEndpointRefusalsStopTheAccount(t *testing.T) {
	t.Parallel()
	cases := []struct {
		code int
		want Action
	}{
		{wechat.CodeInvalidCredential, StopAccount}, // bad secret, not a stale token
		{wechat.CodeInvalidGrantType, StopAccount},
		{wechat.CodeInvalidSecret, StopAccount},
		{wechat.CodeIPNotWhitelisted, StopAccount},
		{wechat.CodeSecretFrozen, StopAccount},
		{wechat.CodeDailyQuota, QuotaExhausted},
		{wechat.CodeSystemBusy, Retry},
		{wechat.CodeSystemError, Retry},
	}
	for _, tc := range cases {
		err := fmt.Errorf("token: %w", &wechat.Error{Op: wechat.OpFetchToken, Code: tc.code, Message: "m"})
		if got := Classify(err).Action; got != tc.want {
			t.Errorf("token endpoint errcode %d -> %v, want %v", tc.code, got, tc.want)
		}
	}
}
