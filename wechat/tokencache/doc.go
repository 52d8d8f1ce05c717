// Package tokencache shares one WeChat access_token per account among all
// worker processes through Redis, so that N processes make one token fetch
// per token lifetime instead of N and, on the classic endpoint, do not keep
// making each other's tokens "not latest".
//
// A *Cache wraps a wechat.Fetcher and implements wechat.TokenSource. The
// Fetcher decides which token endpoint is called; the cache never forces
// a refresh. The package does not log: it reports through Options.OnEvent.
//
// # Two levels
//
// Each process keeps the current token in memory. Token answers from
// memory, with no Redis command, while the token is fresh. Redis is read
// only when the memory copy nears expiry, was invalidated, or is missing.
//
// # Margin and refresh-ahead
//
// A token fetched with lifetime L left (7200 s from WeChat, less when a
// token is read from Redis) gets the margin m = min(RefreshMargin, L/4),
// RefreshMargin defaulting to 5 minutes. Then:
//
//   - before expiry−m the token is fresh and served from memory;
//   - from expiry−m to expiry−m/2 it is still served, and the first caller
//     in that window starts one background refresh for the process; the
//     other callers keep using the token and do not wait;
//   - from expiry−m/2 it is never served while a refresh can succeed:
//     callers wait for the refresh.
//
// So in steady state no send waits on a fetch, and while refreshes work no
// token is used in its last m/2 (2.5 minutes by default).
//
// stable_token hands back the token already issued until that token's last
// 5 minutes. If a refresh gets the token it already had, the new lifetime
// is what that token has left, so the next refresh comes at a quarter of
// that: a second fetch, never a loop.
//
// # Keys
//
// With prefix P (default "wxnotify:token:") and account A = appid, plus
// ":" and the endpoint kind when known ("wx123:stable_token"; stable and
// classic tokens are separate credentials), the cache uses three keys
// sharing the hash tag {A}, so they also work on Redis Cluster:
//
//	P{A}       "1|<expires unix ms>|<fetched unix ms>|<token>", PX = time left
//	P{A}:lock  the refresh lock: a random owner id, PX = LockLease
//	P{A}:hold  JSON record of a block or cooldown (see Failures)
//
// Redis holds the token, which is unavoidable, but nothing derived from the
// AppSecret. One MGET of the three keys is the only read.
//
// # One refresh at a time
//
// Inside a process, concurrent callers share one refresh (a hand-written
// singleflight). The refresh reads Redis; if another process stored a fresh
// token it is adopted. Otherwise the refresh takes the lock with SET NX PX.
// The holder reads Redis once more (a previous holder may just have
// finished), fetches, then stores the token and releases the lock in one
// script. The lock is released only by the owner id that took it
// (compare-and-delete in Lua), so a holder whose lease ran out cannot free
// a lock someone else now holds. A fetch is bounded by the lease.
//
// Processes that find the lock taken wait for the holder instead of
// fetching: they poll the same MGET with exponential delays from 10 ms to
// 250 ms, each jittered to between half and all of its value, for at most
// WaitTimeout (5 s by default). If the lock disappears without a token (the
// holder crashed or failed), a waiter takes the lock itself. A waiter that
// times out returns an error wrapping ErrWaitTimeout, unless the memory
// copy has not yet expired.
//
// # Compare-and-invalidate
//
// When WeChat rejects a token (40001, 40014, 42001), Invalidate drops it
// from memory only if memory still holds that token, and from Redis only
// if Redis still holds it (the stored token is compared inside a Lua
// script). A storm of rejections of an old token therefore cannot wipe a
// token another process has just fetched, and only the first of them in a
// process costs a Redis command. The rejected token is remembered, so it
// is not read back from Redis before the delete lands.
//
// # Failures
//
// A Redis failure is never treated as a miss. The memory copy is used
// while it is usable. Without a usable copy, the process fetches on its
// own at most once per MinFetchInterval (30 s by default), so while Redis
// is down each process makes at most one fetch per 30 s, and in practice
// one per token lifetime; callers in between get the last fetched token
// while it has not expired, else a *CooldownError. Redis errors are
// reported as redis_error events at most once per ReportInterval (30 s).
//
// Token endpoint errcodes that mean misconfiguration (40013 invalid appid,
// 40125 invalid secret, 40164 IP not whitelisted, whose errmsg names the IP,
// 40243 frozen secret, 40001 and 40002 on the token endpoint, 45009 daily
// quota, and the 89503–89507 IP confirmation codes) stop fetches for the
// account for BlockFor (5 minutes by default). The process that got the
// answer reports one blocked event and records a hold in Redis, so every
// process returns a *BlockedError at once, without calling WeChat, and
// across all processes one fetch is made per BlockFor.
//
// Other fetch errors (-1, -1000, HTTP 5xx, transport failures, timeouts)
// are returned to the caller, and the worker retries its task. They also
// pause fetches for all processes: FetchErrorBackoff (5 s by default),
// doubled on each consecutive failure up to 12 times that (5, 10, 20, 40,
// then 60 s), during which Token returns a *CooldownError. A successful
// fetch resets the doubling.
//
// Whenever a refresh fails or cannot be tried (Redis down, a block, a
// cooldown, a wait that timed out), a token still in memory is served until
// it expires, past the margin, since it may well still work. The errors
// above reach callers only when there is no such token.
//
// # Secrets
//
// Errors and events never contain a token or a secret. Events name tokens
// by wechat.Fingerprint. A hold record keeps WeChat's errcode, errmsg and
// rid, and for other failures only a classification such as "transport"
// or "http status 502", never the error text.
package tokencache
