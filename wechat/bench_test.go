package wechat_test

import (
	"context"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/wechat"
)

// sink keeps results alive so the compiler cannot drop the work.
var sink string

func BenchmarkMemoryTokenSourceHit(b *testing.B) {
	s := warmSource(b)
	ctx := context.Background()
	b.ReportAllocs()

	for b.Loop() {
		sink, _ = s.Token(ctx)
	}
}

func BenchmarkMemoryTokenSourceHitParallel(b *testing.B) {
	s := warmSource(b)
	ctx := context.Background()
	b.ReportAllocs()

	b.RunParallel(func(pb *testing.PB) {
		var local string
		for pb.Next() {
			local, _ = s.Token(ctx)
		}
		_ = local
	})
}

// BenchmarkPlainVariable is the floor BenchmarkMemoryTokenSourceHit is
// measured against: reading a token held in a variable.
func BenchmarkPlainVariable(b *testing.B) {
	token := "tok-1"
	b.ReportAllocs()

	for b.Loop() {
		sink = token
	}
}

func BenchmarkEncodeMessage(b *testing.B) {
	msg := &wechat.TemplateMessage{
		ToUser:     "oUser1aBcDeFgHiJkLmNoPqRsTuV",
		TemplateID: "Zx3kP9-abcdefghijklmnopqrstuvwxyz012345",
		URL:        "https://shop.example/orders/1234?from=wx&utm=tmpl",
		Data: map[string]wechat.DataItem{
			"character_string1": {Value: "SO20250301-0001"},
			"thing2":            {Value: "Blue ceramic mug"},
			"amount3":           {Value: "¥128.00"},
			"time4":             {Value: "2025-03-01 08:00"},
		},
		ClientMsgID: "0b6f5c1e-7d2a-4f8e-9c3b-1a2b3c4d5e6f",
	}
	b.ReportAllocs()

	for b.Loop() {
		if _, err := wechat.EncodeJSON(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// warmSource returns a MemoryTokenSource on the real clock whose token is
// already cached.
func warmSource(b *testing.B) *wechat.MemoryTokenSource {
	b.Helper()
	s := wechat.NewMemoryTokenSource(longLivedFetcher{})
	if _, err := s.Token(context.Background()); err != nil {
		b.Fatal(err)
	}
	return s
}

// longLivedFetcher issues a token valid for two hours of real time.
type longLivedFetcher struct{}

func (longLivedFetcher) AppID() string { return "wx-bench" }

func (longLivedFetcher) FetchToken(context.Context) (wechat.Token, error) {
	return wechat.Token{Value: "tok-1", ExpiresAt: time.Now().Add(2 * time.Hour)}, nil
}
