package main

import (
	"github.com/rs/zerolog"

	"github.com/wxnotify/wxnotify/wechat/tokencache"
)

// tokenEventLogger turns token cache events into log lines an operator
// can act on. Events carry token fingerprints, never tokens.
func tokenEventLogger(log zerolog.Logger) func(tokencache.Event) {
	return func(ev tokencache.Event) {
		var e *zerolog.Event
		msg := ""
		switch ev.Kind {
		case tokencache.EventRefreshed:
			e, msg = log.Info(), "access token refreshed"
		case tokencache.EventInvalidated:
			e, msg = log.Info(), "access token rejected by wechat, dropped from the cache"
		case tokencache.EventBlocked:
			e, msg = log.Error(), "token fetch refused for this account: fix its configuration; "+
				"sends for it wait until then"
		case tokencache.EventFetchFailed:
			e, msg = log.Warn(), "token fetch failed, retrying after a pause"
		case tokencache.EventRedisError:
			e, msg = log.Error(), "redis errors in the token cache; sending on the in-memory token"
		default:
			e, msg = log.Info(), "token cache: "+string(ev.Kind)
		}
		e = e.Str("appid", ev.AppID).Str("token_endpoint", ev.Endpoint)
		if ev.Code != 0 {
			e = e.Int("errcode", ev.Code)
		}
		if ev.Fingerprint != "" {
			e = e.Str("token", ev.Fingerprint)
		}
		if !ev.ExpiresAt.IsZero() {
			e = e.Time("expires_at", ev.ExpiresAt)
		}
		if !ev.Until.IsZero() {
			e = e.Time("until", ev.Until)
		}
		if ev.Count > 1 {
			e = e.Int("count", ev.Count)
		}
		if ev.Err != nil {
			e = e.Str("error", ev.Err.Error())
		}
		e.Msg(msg)
	}
}
