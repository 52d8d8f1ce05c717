package tokencache

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wxnotify/wxnotify/wechat"
)

// tokenServer answers POST /cgi-bin/stable_token with whatever body is
// set, and counts the calls.
type tokenServer struct {
	*httptest.Server
	calls  atomic.Int64
	answer atomic.Value // string
}

func newTokenServer(t *testing.T) *tokenServer {
	t.Helper()
	s := &tokenServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != "/cgi-bin/stable_token" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, s.answer.Load().(string))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestRealFetcherMisconfigurationIsBlockedOnce(t *testing.T) {
	t.Parallel()
	srv := newTokenServer(t)
	srv.answer.Store(`{"errcode":40164,"errmsg":"invalid ip 1.2.3.4 ipv6 ::ffff:1.2.3.4, ` +
		`not in whitelist rid: 6650a1b2-3c4d5e6f-7a8b9c0d"}`)
	prefix := testPrefix(t)
	newCache := func() *Cache {
		f := wechat.NewTokenFetcher("wxreal", testSecret, wechat.WithBaseURL(srv.URL))
		return New(newClient(t), f, Options{KeyPrefix: prefix})
	}
	a, b := newCache(), newCache()

	for _, c := range []*Cache{a, b, a, b} {
		_, err := c.Token(context.Background())
		var blocked *BlockedError
		if !errors.As(err, &blocked) {
			t.Fatalf("Token = %v, want *BlockedError", err)
		}
		if !strings.Contains(blocked.Cause.Message, "invalid ip 1.2.3.4") ||
			blocked.Cause.RID != "6650a1b2-3c4d5e6f-7a8b9c0d" {
			t.Errorf("cause = %+v, want the IP and the rid kept", blocked.Cause)
		}
		if strings.Contains(err.Error(), testSecret) {
			t.Errorf("error holds the secret: %v", err)
		}
	}
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("token endpoint calls = %d, want 1", n)
	}
	if want := prefix + "{wxreal:stable_token}"; a.store.tokenKey != want {
		t.Errorf("key = %q, want %q", a.store.tokenKey, want)
	}
}

func TestRealFetcherTokenIsShared(t *testing.T) {
	t.Parallel()
	srv := newTokenServer(t)
	srv.answer.Store(`{"access_token":"ACCESS-TOKEN-from-wechat","expires_in":7200}`)
	prefix := testPrefix(t)
	f := wechat.NewTokenFetcher("wxreal", testSecret, wechat.WithBaseURL(srv.URL))
	a := New(newClient(t), f, Options{KeyPrefix: prefix})
	b := New(newClient(t), f, Options{KeyPrefix: prefix})

	if got := mustToken(t, a); got != "ACCESS-TOKEN-from-wechat" {
		t.Fatalf("Token = %q", got)
	}
	if got := mustToken(t, b); got != "ACCESS-TOKEN-from-wechat" {
		t.Fatalf("second process Token = %q", got)
	}
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("token endpoint calls = %d, want 1", n)
	}
}
