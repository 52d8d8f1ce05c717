package wechat_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/wechat"
)

// Distinctive credentials, so that any leak is found by a substring test.
const (
	leakSecret = "SECRET9f8e7d6c5b4a"
	leakToken  = "TOKEN1a2b3c4d5e6f"
)

func TestErrorsNeverContainTokenOrSecret(t *testing.T) {
	t.Parallel()
	redirectLoop := func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.String(), http.StatusFound)
	}
	numericToken := func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"access_token":918273645546372819,"expires_in":7200}`))
	}
	short := &http.Client{Timeout: 50 * time.Millisecond}

	tests := []struct {
		name    string
		handler http.HandlerFunc // nil: the server is closed
		hang    bool             // the server never answers
		call    func(opts ...wechat.Option) error
		opts    []wechat.Option
		forbid  []string
	}{
		{name: "send, connection refused", call: send},
		{name: "send, timeout", hang: true, call: send,
			opts: []wechat.Option{wechat.WithHTTPClient(short)}},
		{name: "send, redirect loop", handler: redirectLoop, call: send},
		{name: "send, malformed base url", call: send,
			opts: []wechat.Option{wechat.WithBaseURL("http://[::1")}},
		{name: "classic token, connection refused", call: fetchClassic},
		{name: "classic token, timeout", hang: true, call: fetchClassic,
			opts: []wechat.Option{wechat.WithHTTPClient(short)}},
		{name: "classic token, redirect loop", handler: redirectLoop, call: fetchClassic},
		{name: "stable token, connection refused", call: fetchToken},
		{name: "stable token, numeric token", handler: numericToken, call: fetchToken,
			forbid: []string{"918273645546372819"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := closedServerURL(t)
			switch {
			case tt.handler != nil:
				base = newHandlerServer(t, tt.handler).URL
			case tt.hang:
				base = newHangingServer(t, nil).URL
			}
			opts := append([]wechat.Option{wechat.WithBaseURL(base)}, tt.opts...)

			err := tt.call(opts...)
			if err == nil {
				t.Fatal("call succeeded, want an error")
			}
			forbid := append([]string{leakSecret, leakToken}, tt.forbid...)
			assertNoLeak(t, err, forbid)
		})
	}
}

func TestFormattingHidesCredentials(t *testing.T) {
	t.Parallel()
	srv := newAPIServer(t, `{"access_token":"`+leakToken+`","expires_in":7200}`)
	f := wechat.NewTokenFetcher("wxapp", leakSecret, wechat.WithBaseURL(srv.URL))
	s := wechat.NewMemoryTokenSource(f)
	if _, err := s.Token(context.Background()); err != nil {
		t.Fatalf("Token: %v", err)
	}

	for _, v := range []any{f, *f, s, wechat.NewClient(s)} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x"} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, leakSecret) || strings.Contains(out, leakToken) {
				t.Errorf("fmt %s of %T leaks a credential: %s", verb, v, out)
			}
		}
	}
}

func send(opts ...wechat.Option) error {
	c := wechat.NewClient(&stubSource{tokens: []string{leakToken}}, opts...)
	_, err := c.SendTemplate(context.Background(), sampleMessage())
	return err
}

func fetchClassic(opts ...wechat.Option) error {
	opts = append(opts, wechat.WithTokenEndpoint(wechat.ClassicTokenEndpoint))
	return fetchToken(opts...)
}

func fetchToken(opts ...wechat.Option) error {
	f := wechat.NewTokenFetcher("wxapp", leakSecret, opts...)
	_, err := f.FetchToken(context.Background())
	return err
}

func assertNoLeak(t *testing.T, err error, forbid []string) {
	t.Helper()
	t.Logf("error: %v", err)
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		out := fmt.Sprintf(verb, err)
		for _, s := range forbid {
			if strings.Contains(out, s) {
				t.Errorf("error printed with %s leaks %q: %s", verb, s, out)
			}
		}
	}
}
