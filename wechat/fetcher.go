package wechat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// TokenEndpoint names one of WeChat's two ways to get an access_token.
type TokenEndpoint string

const (
	// StableTokenEndpoint is POST /cgi-bin/stable_token (获取稳定版接口
	// 调用凭据, getStableAccessToken), the default. Called in normal mode
	// it returns the token currently in force, so several processes can
	// call it without invalidating each other's tokens.
	StableTokenEndpoint TokenEndpoint = "stable_token"
	// ClassicTokenEndpoint is GET /cgi-bin/token (获取接口调用凭据,
	// getAccessToken). Every call issues a new token and retires the
	// previous one after about five minutes, so it should be called from
	// one place only.
	ClassicTokenEndpoint TokenEndpoint = "token"
)

// ParseTokenEndpoint reads a TokenEndpoint from configuration:
// "stable_token" or "token", ignoring case and surrounding space.
func ParseTokenEndpoint(s string) (TokenEndpoint, error) {
	e := TokenEndpoint(strings.ToLower(strings.TrimSpace(s)))
	switch e {
	case StableTokenEndpoint, ClassicTokenEndpoint:
		return e, nil
	}
	return "", fmt.Errorf("parse token endpoint %q: want %q or %q",
		s, StableTokenEndpoint, ClassicTokenEndpoint)
}

// opFetchToken names token calls in errors.
const opFetchToken = OpFetchToken

// grantType is the only grant WeChat accepts on both endpoints.
const grantType = "client_credential"

// TokenFetcher obtains access tokens for one account from WeChat. It
// keeps no state between calls, is safe for concurrent use, and prints
// without its secret.
type TokenFetcher struct {
	appID  string
	secret string
	cfg    config
}

// NewTokenFetcher returns a fetcher for the account appID with its
// AppSecret. It accepts WithBaseURL, WithHTTPClient, WithClock and
// WithTokenEndpoint.
func NewTokenFetcher(appID, secret string, opts ...Option) *TokenFetcher {
	return &TokenFetcher{appID: appID, secret: secret, cfg: newConfig(opts)}
}

// AppID returns the account the fetcher gets tokens for.
func (f *TokenFetcher) AppID() string { return f.appID }

// Endpoint returns the token endpoint the fetcher calls.
func (f *TokenFetcher) Endpoint() TokenEndpoint { return f.cfg.endpoint }

// String describes the fetcher without its secret.
func (f TokenFetcher) String() string {
	return "TokenFetcher(" + f.appID + ", " + string(f.cfg.endpoint) + ")"
}

// Format prints String for every verb, so that no verb (%+v, %#v, %d)
// can reach the secret.
func (f TokenFetcher) Format(s fmt.State, _ rune) {
	_, _ = s.Write([]byte(f.String()))
}

// tokenAnswer is the body of both token endpoints.
type tokenAnswer struct {
	apiStatus
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// FetchToken makes one call to the configured endpoint and returns the
// new token, expiring expires_in seconds after the call began. It never
// asks stable_token to force a refresh. A non-zero errcode comes back as
// an *Error with Op "fetch token"; an answer without a token or with a
// lifetime that is not positive comes back as a *DecodeError.
func (f *TokenFetcher) FetchToken(ctx context.Context) (Token, error) {
	r, err := f.request()
	if err != nil {
		return Token{}, err
	}

	start := f.cfg.now()
	var out tokenAnswer
	if err := f.cfg.do(ctx, r, &out); err != nil {
		return Token{}, err
	}

	if err := out.check(); err != nil {
		return Token{}, &DecodeError{Op: opFetchToken, Err: err}
	}
	expires := start.Add(time.Duration(out.ExpiresIn) * time.Second)
	return Token{Value: out.AccessToken, ExpiresAt: expires}, nil
}

// request builds the call for the configured endpoint.
func (f *TokenFetcher) request() (request, error) {
	switch f.cfg.endpoint {
	case StableTokenEndpoint:
		return f.stableRequest()
	case ClassicTokenEndpoint:
		return f.classicRequest(), nil
	}
	return request{}, fmt.Errorf("%s: unknown token endpoint %q",
		opFetchToken, f.cfg.endpoint)
}

// stableTokenBody is the JSON body of POST /cgi-bin/stable_token.
// ForceRefresh has no omitempty so the body states normal mode outright.
type stableTokenBody struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

func (f *TokenFetcher) stableRequest() (request, error) {
	body, err := EncodeJSON(stableTokenBody{
		GrantType: grantType,
		AppID:     f.appID,
		Secret:    f.secret,
	})
	if err != nil {
		return request{}, fmt.Errorf("%s: %w", opFetchToken, err)
	}

	return request{
		op:     opFetchToken,
		method: http.MethodPost,
		path:   "/cgi-bin/stable_token",
		body:   body,
	}, nil
}

func (f *TokenFetcher) classicRequest() request {
	return request{
		op:     opFetchToken,
		method: http.MethodGet,
		path:   "/cgi-bin/token",
		query: url.Values{
			"grant_type": {grantType},
			"appid":      {f.appID},
			"secret":     {f.secret},
		},
	}
}

// check rejects an errcode-0 answer that holds no usable token.
func (a *tokenAnswer) check() error {
	if a.AccessToken == "" {
		return errors.New("no access_token in answer")
	}
	if a.ExpiresIn <= 0 {
		return fmt.Errorf("expires_in %d is not positive", a.ExpiresIn)
	}
	return nil
}
