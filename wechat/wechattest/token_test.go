package wechattest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/wechat"
)

func TestStableTokenStaysTheSameUntilItsRotationWindow(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})

	first := h.stable(DefaultAppID, DefaultSecret, false)
	wantCode(t, first, 0)
	if first.ExpiresIn != 7200 {
		t.Fatalf("expires_in = %d, want 7200", first.ExpiresIn)
	}

	h.srv.Advance(time.Hour)
	again := h.stable(DefaultAppID, DefaultSecret, false)
	if again.AccessToken != first.AccessToken || again.ExpiresIn != 3600 {
		t.Fatalf("an hour later: new token or expires_in %d, want the same, 3600", again.ExpiresIn)
	}

	h.srv.Advance(55 * time.Minute) // 5 minutes of life left
	rotated := h.stable(DefaultAppID, DefaultSecret, false)
	if rotated.AccessToken == first.AccessToken || rotated.ExpiresIn != 7200 {
		t.Fatalf("in the last 5 minutes got the old token or expires_in %d", rotated.ExpiresIn)
	}
	if st := h.srv.Stats(); st.TokensIssued != 2 || st.StableTokenCalls != 3 {
		t.Fatalf("issued %d tokens in %d calls, want 2 in 3",
			st.TokensIssued, st.StableTokenCalls)
	}

	wantCode(t, h.send(first.AccessToken, message("o-old", "")), 0)
	h.srv.Advance(5 * time.Minute)
	wantCode(t, h.send(first.AccessToken, message("o-old", "")), wechat.CodeTokenExpired)
	wantCode(t, h.send(rotated.AccessToken, message("o-new", "")), 0)
}

func TestStableRotationWindowScalesWithShortLifetimes(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{TokenTTL: time.Minute}) // window: 15 s

	first := h.token()
	h.srv.Advance(44 * time.Second)
	if got := h.token(); got != first {
		t.Fatal("token rotated 16 s before expiry, want 15 s")
	}

	h.srv.Advance(time.Second)
	if got := h.token(); got == first {
		t.Fatal("token not rotated 15 s before expiry")
	}
}

func TestStableForceRefreshRevokesTheCurrentTokenAtOnce(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})

	old := h.token()
	fresh := h.stable(DefaultAppID, DefaultSecret, true)
	wantCode(t, fresh, 0)
	if fresh.AccessToken == old {
		t.Fatal("force_refresh returned the same token")
	}

	wantCode(t, h.send(old, message("o-1", "")), wechat.CodeInvalidCredential)
	wantCode(t, h.send(fresh.AccessToken, message("o-1", "")), 0)
	if st := h.srv.Stats(); st.ForceRefreshes != 1 || st.StableTokenCalls != 2 {
		t.Fatalf("force refreshes %d of %d stable calls, want 1 of 2",
			st.ForceRefreshes, st.StableTokenCalls)
	}
}

func TestClassicTokenIsNewEachCallAndTheOldOneLastsTheOverlap(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})

	first := h.classic(DefaultAppID, DefaultSecret)
	second := h.classic(DefaultAppID, DefaultSecret)
	wantCode(t, second, 0)
	if first.AccessToken == second.AccessToken || second.ExpiresIn != 7200 {
		t.Fatalf("second call: same token or expires_in %d", second.ExpiresIn)
	}

	h.srv.Advance(5*time.Minute - time.Second)
	wantCode(t, h.send(first.AccessToken, message("o-1", "")), 0)

	h.srv.Advance(time.Second)
	r := h.send(first.AccessToken, message("o-1", ""))
	wantCode(t, r, wechat.CodeInvalidCredential)
	const notLatest = "invalid credential, access_token is invalid or not latest"
	if !strings.HasPrefix(r.Errmsg, notLatest) {
		t.Fatalf("errmsg %q", r.Errmsg)
	}
	wantCode(t, h.send(second.AccessToken, message("o-1", "")), 0)

	h.srv.Advance(2 * time.Hour)
	wantCode(t, h.send(second.AccessToken, message("o-1", "")), wechat.CodeTokenExpired)
}

func TestClassicOverlapIsConfigurable(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{ClassicOverlap: -1})

	first := h.classic(DefaultAppID, DefaultSecret).AccessToken
	h.classic(DefaultAppID, DefaultSecret)
	wantCode(t, h.send(first, message("o-1", "")), wechat.CodeInvalidCredential)
}

func TestTokenEndpointsDoNotInvalidateEachOther(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})

	stable := h.token()
	classic := h.classic(DefaultAppID, DefaultSecret).AccessToken
	h.classic(DefaultAppID, DefaultSecret)
	h.srv.Advance(10 * time.Minute)
	wantCode(t, h.send(stable, message("o-1", "")), 0)

	latest := h.classic(DefaultAppID, DefaultSecret).AccessToken
	h.stable(DefaultAppID, DefaultSecret, true)
	wantCode(t, h.send(latest, message("o-1", "")), 0)
	wantCode(t, h.send(classic, message("o-1", "")), wechat.CodeInvalidCredential)

	st := h.srv.Stats()
	if st.TokenCalls != 5 || st.ClassicTokenCalls != 3 || st.StableTokenCalls != 2 {
		t.Fatalf("token calls %d (classic %d, stable %d), want 5 (3, 2)",
			st.TokenCalls, st.ClassicTokenCalls, st.StableTokenCalls)
	}
}

func TestTokenEndpointsRefuseBadCredentials(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{Accounts: map[string]string{"wx-a": "secret-a"}})

	const grant = "client_credential"
	tests := []struct {
		name    string
		req     tokenRequest
		want    int
		wantMsg string
	}{
		{"unknown appid", tokenRequest{GrantType: grant, AppID: "wx-no", Secret: "secret-a"},
			wechat.CodeInvalidAppID, "invalid appid"},
		{"wrong secret", tokenRequest{GrantType: grant, AppID: "wx-a", Secret: "guess"},
			wechat.CodeInvalidSecret, "invalid appsecret"},
		{"bad grant type", tokenRequest{GrantType: "password", AppID: "wx-a", Secret: "secret-a"},
			wechat.CodeInvalidGrantType, "invalid grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stable := h.post("/cgi-bin/stable_token", mustJSON(t, tt.req))
			q := url.Values{
				"grant_type": {tt.req.GrantType},
				"appid":      {tt.req.AppID},
				"secret":     {tt.req.Secret},
			}
			classic := h.get("/cgi-bin/token?" + q.Encode())

			for _, r := range []reply{stable, classic} {
				wantCode(t, r, tt.want)
				if !strings.HasPrefix(r.Errmsg, tt.wantMsg+" rid: ") || r.AccessToken != "" {
					t.Fatalf("errmsg %q, token %q", r.Errmsg, r.AccessToken)
				}
				if strings.Contains(r.Errmsg, tt.req.Secret) {
					t.Fatalf("errmsg %q holds the secret", r.Errmsg)
				}
			}
		})
	}
}

func TestStableTokenTakesOnlyAJSONPost(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})

	wantCode(t, h.get("/cgi-bin/stable_token"), 43002)
	wantCode(t, h.post("/cgi-bin/stable_token", []byte("appid=x")), wechat.CodeDataFormat)
	wantCode(t, h.post("/cgi-bin/stable_token", nil), 44002)
	st := h.srv.Stats()
	if st.TokenErrcodes[wechat.CodeDataFormat] != 1 || st.StableTokenCalls != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTokenErrcodeFaultAnswersEveryTokenCall(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})

	h.srv.SetFaults(Faults{TokenErrcode: wechat.CodeIPNotWhitelisted})
	const refused = "invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist rid: "
	stable := h.stable(DefaultAppID, DefaultSecret, false)
	for _, r := range []reply{stable, h.classic(DefaultAppID, DefaultSecret)} {
		wantCode(t, r, wechat.CodeIPNotWhitelisted)
		if !strings.HasPrefix(r.Errmsg, refused) {
			t.Fatalf("errmsg %q", r.Errmsg)
		}
	}

	h.srv.SetFaults(Faults{TokenErrcode: wechat.CodeSystemError, TokenErrmsg: "system error"})
	wantCode(t, h.stable(DefaultAppID, DefaultSecret, false), wechat.CodeSystemError)

	h.srv.SetFaults(Faults{})
	wantCode(t, h.stable(DefaultAppID, DefaultSecret, false), 0)
	st := h.srv.Stats()
	if st.TokenErrcodes[40164] != 2 || st.TokenErrcodes[-1000] != 1 || st.TokensIssued != 1 {
		t.Fatalf("token errcodes %v, issued %d", st.TokenErrcodes, st.TokensIssued)
	}
}

func TestRotateTokenRevokesEveryTokenOfTheAccount(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{Accounts: map[string]string{"wx-a": "sa", "wx-b": "sb"}})

	stable := h.stable("wx-a", "sa", false).AccessToken
	classic := h.classic("wx-a", "sa").AccessToken
	other := h.stable("wx-b", "sb", false).AccessToken
	h.srv.RotateToken("wx-a")

	wantCode(t, h.send(stable, message("o-1", "")), wechat.CodeInvalidCredential)
	wantCode(t, h.send(classic, message("o-1", "")), wechat.CodeInvalidCredential)
	wantCode(t, h.send(other, message("o-1", "")), 0)

	fresh := h.stable("wx-a", "sa", false).AccessToken
	if fresh == stable {
		t.Fatal("stable_token returned the revoked token")
	}
	wantCode(t, h.send(fresh, message("o-1", "")), 0)
}

func TestTokensAreLongAndDistinct(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})

	seen := map[string]bool{}
	for range 20 {
		tok := h.classic(DefaultAppID, DefaultSecret).AccessToken
		if len(tok) < 100 || seen[tok] {
			t.Fatalf("token of %d characters, repeated: %v", len(tok), seen[tok])
		}
		seen[tok] = true
	}
}

func TestClassicTokenAcceptsOnlyItsQuery(t *testing.T) {
	t.Parallel()
	h := setup(t, Config{})

	r := h.get("/cgi-bin/token?grant_type=client_credential")
	wantCode(t, r, wechat.CodeInvalidAppID)
	if r.Status != http.StatusOK {
		t.Fatalf("status %d", r.Status)
	}
}
