package tokencache

import (
	"errors"
	"fmt"
	"time"

	"github.com/wxnotify/wxnotify/wechat"
)

// ErrWaitTimeout is returned (wrapped) when another process held the
// refresh lock for longer than Options.WaitTimeout without publishing a
// token. The caller should retry later; the lock's lease bounds how long
// a crashed holder can delay everyone.
var ErrWaitTimeout = errors.New("timed out waiting for another process to refresh the token")

// BlockedError means the token endpoint answered an errcode that no retry
// can fix (a wrong appid or secret, an IP missing from the whitelist, a
// frozen secret), so no process fetches a token for the account until
// Until. Token returns it at once, without calling WeChat or Redis.
type BlockedError struct {
	// AppID is the account whose token fetches are blocked.
	AppID string
	// Cause is WeChat's answer. For 40164 its Message carries the IP
	// WeChat saw, which is what has to go on the whitelist.
	Cause *wechat.Error
	// Until is when the next fetch may be tried.
	Until time.Time
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("token fetches for %s blocked until %s: %v",
		e.AppID, e.Until.UTC().Format(time.RFC3339), e.Cause)
}

// Unwrap returns the WeChat error, so wechat.Code reports its errcode.
func (e *BlockedError) Unwrap() error { return e.Cause }

// CooldownError means a token is needed but none is fetched right now:
// a recent fetch failed with a transient error (errcode -1, -1000, an
// HTTP 5xx, a transport failure), or Redis is failing and this process
// already fetched within Options.MinFetchInterval. The caller should retry
// after Until.
type CooldownError struct {
	// AppID is the account concerned.
	AppID string
	// Cause is the failure that started the cooldown: the fetch error, a
	// *wechat.Error rebuilt from what another process recorded, or the
	// Redis error.
	Cause error
	// Until is when the next fetch may be tried.
	Until time.Time
}

func (e *CooldownError) Error() string {
	return fmt.Sprintf("token fetches for %s paused until %s: %v",
		e.AppID, e.Until.UTC().Format(time.RFC3339), e.Cause)
}

// Unwrap returns the cause.
func (e *CooldownError) Unwrap() error { return e.Cause }

// blockingCode reports whether an errcode from the token endpoint means
// misconfiguration: retrying cannot succeed until someone changes the
// account, the secret, the whitelist or the quota.
func blockingCode(code int) bool {
	switch code {
	case wechat.CodeInvalidCredential, // on the token endpoint: bad secret
		wechat.CodeInvalidGrantType,
		wechat.CodeInvalidAppID,
		wechat.CodeInvalidSecret,
		wechat.CodeIPNotWhitelisted,
		wechat.CodeSecretFrozen,
		wechat.CodeDailyQuota,
		wechat.CodeIPNeedsConfirm,
		wechat.CodeIPWaitConfirm4,
		wechat.CodeIPWaitConfirm5,
		wechat.CodeIPRefused24h,
		wechat.CodeIPRefused1h:
		return true
	}
	return false
}

// blockingError returns the WeChat error in err when its errcode blocks
// fetches.
func blockingError(err error) (*wechat.Error, bool) {
	var we *wechat.Error
	if errors.As(err, &we) && blockingCode(we.Code) {
		return we, true
	}
	return nil, false
}
