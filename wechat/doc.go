// Package wechat speaks the part of the WeChat service-account HTTP API
// that wxnotify needs: fetching access tokens and sending template
// messages.
//
// A TokenFetcher calls one of the two token endpoints (stable_token by
// default, which never forces a refresh) once per call. A
// MemoryTokenSource caches its answer in process, refreshes it ahead of
// expiry and lets concurrent callers share one fetch. A Client sends
// template messages with tokens from any TokenSource.
//
// The package knows nothing of queues, Redis or logging. A Client makes
// one attempt per call; the only repeat is a single replay with a fresh
// token when WeChat rejects the token itself (errcode 40001, 40014 or
// 42001). Whether and when to retry anything else is the caller's
// decision, made from the error's type: *Error for a non-zero errcode,
// *StatusError, *TransportError and *DecodeError for the rest.
//
// No error, panic or formatted value produced here holds an AppSecret or
// an access_token: request URLs are removed from transport errors and the
// types that keep credentials print masked.
package wechat
