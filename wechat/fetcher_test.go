package wechat_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/wechat"
)

const tokenAnswer = `{"access_token":"ACCESS-1","expires_in":7200}`

func TestStableTokenNeverForcesRefresh(t *testing.T) {
	t.Parallel()
	srv := newAPIServer(t, tokenAnswer)
	f := wechat.NewTokenFetcher("wxapp", "s3cret", wechat.WithBaseURL(srv.URL))

	if _, err := f.FetchToken(context.Background()); err != nil {
		t.Fatalf("FetchToken: %v", err)
	}

	got := srv.requests()[0]
	if got.Method != http.MethodPost || got.Path != "/cgi-bin/stable_token" {
		t.Errorf("request = %s %s, want POST /cgi-bin/stable_token", got.Method, got.Path)
	}
	if len(got.Query) != 0 {
		t.Errorf("query = %v, want none (the secret belongs in the body)", got.Query)
	}
	if got.ContentType != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got.ContentType)
	}

	var body map[string]any
	if err := json.Unmarshal([]byte(got.Body), &body); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	want := map[string]any{
		"grant_type":    "client_credential",
		"appid":         "wxapp",
		"secret":        "s3cret",
		"force_refresh": false,
	}
	if len(body) != len(want) {
		t.Errorf("body = %v, want exactly %v", body, want)
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("body[%q] = %#v, want %#v", k, body[k], v)
		}
	}
}

func TestClassicTokenEndpoint(t *testing.T) {
	t.Parallel()
	srv := newAPIServer(t, tokenAnswer)
	f := wechat.NewTokenFetcher("wxapp", "s3cret",
		wechat.WithBaseURL(srv.URL),
		wechat.WithTokenEndpoint(wechat.ClassicTokenEndpoint))

	tok, err := f.FetchToken(context.Background())
	if err != nil {
		t.Fatalf("FetchToken: %v", err)
	}
	if tok.Value != "ACCESS-1" {
		t.Errorf("token = %q, want ACCESS-1", tok.Value)
	}

	got := srv.requests()[0]
	if got.Method != http.MethodGet || got.Path != "/cgi-bin/token" {
		t.Errorf("request = %s %s, want GET /cgi-bin/token", got.Method, got.Path)
	}
	wantQuery := map[string]string{
		"grant_type": "client_credential",
		"appid":      "wxapp",
		"secret":     "s3cret",
	}
	for k, v := range wantQuery {
		if q := got.Query.Get(k); q != v {
			t.Errorf("query %s = %q, want %q", k, q, v)
		}
	}
	if got.Body != "" {
		t.Errorf("GET carried a body: %q", got.Body)
	}
}

func TestFetchTokenSetsExpiryFromClock(t *testing.T) {
	t.Parallel()
	srv := newAPIServer(t, `{"access_token":"ACCESS-1","expires_in":300}`)
	clock := newFakeClock()
	f := wechat.NewTokenFetcher("wxapp", "s3cret",
		wechat.WithBaseURL(srv.URL), wechat.WithClock(clock.Now))

	tok, err := f.FetchToken(context.Background())
	if err != nil {
		t.Fatalf("FetchToken: %v", err)
	}
	if want := clock.Now().Add(300 * time.Second); !tok.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", tok.ExpiresAt, want)
	}
}

func TestFetchTokenReturnsWeChatError(t *testing.T) {
	t.Parallel()
	endpoints := []wechat.TokenEndpoint{wechat.StableTokenEndpoint, wechat.ClassicTokenEndpoint}
	for _, e := range endpoints {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			srv := newAPIServer(t, `{"errcode":40164,"errmsg":"invalid ip 1.2.3.4, `+
				`not in whitelist rid: 6523f3b1-0a3c2d5e-1b2c3d4e"}`)
			f := wechat.NewTokenFetcher("wxapp", "s3cret",
				wechat.WithBaseURL(srv.URL), wechat.WithTokenEndpoint(e))

			_, err := f.FetchToken(context.Background())

			want := wechat.Error{
				Op:      "fetch token",
				Code:    wechat.CodeIPNotWhitelisted,
				Message: "invalid ip 1.2.3.4, not in whitelist",
				RID:     "6523f3b1-0a3c2d5e-1b2c3d4e",
			}
			var we *wechat.Error
			if !errors.As(err, &we) || *we != want {
				t.Fatalf("err = %#v, want %#v", err, &want)
			}
		})
	}
}

func TestFetchTokenRejectsAnswerWithoutUsableToken(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body string }{
		{"no access_token", `{"errcode":0,"errmsg":"ok","expires_in":7200}`},
		{"empty access_token", `{"access_token":"","expires_in":7200}`},
		{"no expires_in", `{"access_token":"ACCESS-1"}`},
		{"negative expires_in", `{"access_token":"ACCESS-1","expires_in":-5}`},
		{"not json", `upstream timeout`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newAPIServer(t, tt.body)
			f := wechat.NewTokenFetcher("wxapp", "s3cret", wechat.WithBaseURL(srv.URL))

			tok, err := f.FetchToken(context.Background())
			if !isDecode(err) {
				t.Fatalf("err = %T %v, want *DecodeError", err, err)
			}
			if tok != (wechat.Token{}) {
				t.Errorf("token = %v, want the zero Token on error", tok)
			}
		})
	}
}

func TestFetchTokenRejectsUnknownEndpoint(t *testing.T) {
	t.Parallel()
	srv := newAPIServer(t, tokenAnswer)
	f := wechat.NewTokenFetcher("wxapp", "s3cret",
		wechat.WithBaseURL(srv.URL), wechat.WithTokenEndpoint("tokens"))

	if _, err := f.FetchToken(context.Background()); err == nil {
		t.Fatal("FetchToken with an unknown endpoint succeeded")
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("made %d requests to an unknown endpoint", n)
	}
}

func TestNewTokenFetcherDefaults(t *testing.T) {
	t.Parallel()
	f := wechat.NewTokenFetcher("wxapp", "s3cret")

	if f.AppID() != "wxapp" {
		t.Errorf("AppID = %q, want wxapp", f.AppID())
	}
	if f.Endpoint() != wechat.StableTokenEndpoint {
		t.Errorf("Endpoint = %q, want stable_token", f.Endpoint())
	}
}

func TestParseTokenEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    wechat.TokenEndpoint
		wantErr bool
	}{
		{in: "stable_token", want: wechat.StableTokenEndpoint},
		{in: "token", want: wechat.ClassicTokenEndpoint},
		{in: " Stable_Token ", want: wechat.StableTokenEndpoint},
		{in: "TOKEN", want: wechat.ClassicTokenEndpoint},
		{in: "", wantErr: true},
		{in: "stable", wantErr: true},
		{in: "/cgi-bin/token", wantErr: true},
	}
	for _, tt := range tests {
		got, err := wechat.ParseTokenEndpoint(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseTokenEndpoint(%q) = %q, %v; want %q, error %v",
				tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
