package wechat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Token is an access_token together with the moment WeChat stops accepting
// it. The zero Token is not valid.
type Token struct {
	// Value is the access_token itself. It is a credential: never log it,
	// never put it in an error.
	Value string
	// ExpiresAt is when the token stops working, computed from the
	// expires_in WeChat returned and the clock at the time of the fetch.
	ExpiresAt time.Time
}

// ValidAt reports whether the token is non-empty and still has at least
// margin left before it expires at now.
func (t Token) ValidAt(now time.Time, margin time.Duration) bool {
	return t.Value != "" && now.Add(margin).Before(t.ExpiresAt)
}

// String masks the token so that printing a Token by accident leaks
// nothing.
func (t Token) String() string {
	if t.Value == "" {
		return "Token(none)"
	}
	return "Token(" + Fingerprint(t.Value) + ", expires " + t.ExpiresAt.UTC().Format(time.RFC3339) + ")"
}

// GoString masks the token for %#v as well.
func (t Token) GoString() string { return t.String() }

// Fetcher calls one of WeChat's token endpoints once. It does not cache.
// *TokenFetcher is the real implementation.
type Fetcher interface {
	// AppID names the account whose tokens the fetcher obtains.
	AppID() string
	// FetchToken makes exactly one call to the token endpoint.
	FetchToken(ctx context.Context) (Token, error)
}

// TokenSource hands out the current access token of one account.
// Implementations cache: the in-process MemoryTokenSource in this package
// and the Redis-shared cache in package tokencache.
type TokenSource interface {
	// Token returns a token that is valid now. It may block while a
	// refresh is in progress and returns ctx.Err() if ctx ends first.
	Token(ctx context.Context) (string, error)
	// Invalidate tells the source that WeChat rejected token (errcode
	// 40001, 40014 or 42001). The source drops its cached token only if
	// it is still that token, so a storm of rejections of an old token
	// cannot discard a fresh one.
	Invalidate(ctx context.Context, token string)
}

// Fingerprint returns a short, stable, non-reversible label for a secret
// ("sha256:1a2b3c4d"), so logs can tell two tokens apart without holding
// either.
func Fingerprint(secret string) string {
	if secret == "" {
		return "none"
	}
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:4])
}
