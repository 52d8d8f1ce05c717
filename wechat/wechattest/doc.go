// Package wechattest is a fake WeChat service-account API for tests,
// benchmarks, demos and the "wxnotify mock" process. It behaves as the
// real platform is documented and observed to behave, including its
// failures, and it counts everything it sees so a test can check what a
// client really did.
//
// In a test, NewTestServer starts one on a loopback port and closes it at
// the end; point the client under test at its URL. Elsewhere NewServer
// gives an http.Handler, and Start listens on an address.
//
// # WeChat routes
//
//	POST /cgi-bin/stable_token
//	     JSON body: grant_type, appid, secret, force_refresh
//	GET  /cgi-bin/token?grant_type=client_credential&appid=...&secret=...
//	POST /cgi-bin/message/template/send?access_token=...
//
// Errors come back as WeChat sends them: HTTP 200 with a non-zero errcode
// and an errmsg ending in " rid: xxxxxxxx-xxxxxxxx-xxxxxxxx".
//
// stable_token returns the same token until the token enters its last
// Config.StableRotateWindow (5 minutes by default), then a new one; the
// old one works until it expires, and expires_in counts down.
// force_refresh=true refuses the current token at once and issues a new
// one. /cgi-bin/token issues a new token on every call and refuses the
// previous one with 40001 after Config.ClassicOverlap. The two endpoints
// keep separate tokens and never affect each other. A wrong grant_type
// answers 40002, an unknown appid 40013, a wrong secret 40125.
//
// A template send is checked in this order: access_token missing (41001),
// refused (40001) or expired (42001); POST only (43002); body empty
// (44002), not JSON (47001) or holding \u0026, \u003c or \u003e escapes
// (40033); touser empty or not 1-64 characters of [A-Za-z0-9_-] (40003);
// template_id empty (40036) or not in Config.Templates (40037); data
// empty, or a value with a line break or over its length (47003, naming
// the field): 20 runes for thing* and const* keys, 5 for phrase*, 32 for
// character_string*, no limit otherwise; touser in Config.Unfollowed
// (43004) or Config.Blocked (43019). A send that passes is delivered and
// answered with a msgid; msgids start at FirstMsgID, above 2^53. A second
// send with the same touser and client_msg_id within Config.DedupeWindow
// (10 minutes) answers errcode 0 with the first msgid and is counted as a
// suppressed duplicate, not as a delivery.
//
// # Faults
//
// Faults (see the type) are set with SetFaults or POST /_mock/faults, and
// combine freely:
//
//	errcode_rate      {"-1": 0.2}: answer an errcode with a probability
//	errcode_for       [{"errcode": 43101, "openids": ["o1"],
//	                    "template_ids": ["t1"], "times": 1}]
//	http_5xx_rate     answer HTTP 500/502/503 with an HTML body
//	slow_rate, slow_delay, slow_mode
//	                  delay some sends; mode "after" (default) delivers
//	                  first and answers late, "before" waits first
//	latency           "100ms" added before every send
//	daily_quota       deliveries per Asia/Shanghai day, then 45009
//	minute_limit      deliveries per calendar minute, then 45011
//	openid_frequency  deliveries per openid per minute, then 43117
//	token_errcode     token endpoints answer it (40164 names the caller's
//	token_errmsg      IP), with an optional errmsg
//
// RotateToken (POST /_mock/rotate?appid=...) revokes every token of an
// account at once, as a refresh elsewhere does: sends with them get 40001.
//
// # Admin routes
//
// The admin routes need no token.
//
//	GET  /_mock/stats              counters, as Stats
//	GET  /_mock/deliveries?limit=N the latest N deliveries, oldest first
//	GET  /_mock/faults             the active faults
//	POST /_mock/faults             replace them; {} turns all off
//	POST /_mock/reset              clear counters and deliveries, keep config
//	POST /_mock/rotate?appid=...   revoke the account's tokens
//	GET  /_mock/clock              the server's time and quota day
//	POST /_mock/clock              move the clock, steps in this order:
//	     {"now": "2025-01-02T15:04:05+08:00"}  freeze it at an instant
//	     {"advance": "90s"}                    move it by a duration
//	     {"advance_day": true}                 go to the next quota day
//
// # Time
//
// Token lifetimes, the dedupe window, minutes and quota days follow the
// server's clock: Config.Now (time.Now by default), which SetNow freezes
// and Advance and AdvanceDay move. The quota day starts at 00:00
// Asia/Shanghai, the best guess at the real reset.
package wechattest
