package tokencache

import (
	"context"
	"testing"
	"time"
)

// benchCache returns a cache holding a fresh token on the real clock, and
// the hook counting its Redis commands.
func benchCache(b *testing.B) (*Cache, *countingHook) {
	b.Helper()
	counter := &countingHook{}
	rdb := newClient(b)
	rdb.AddHook(counter)
	fetcher := newFakeFetcher(time.Now, 2*time.Hour)
	c := New(rdb, fetcher, Options{KeyPrefix: testPrefix(b)})
	if _, err := c.Token(context.Background()); err != nil {
		b.Fatal(err)
	}
	counter.reset()
	return c, counter
}

func BenchmarkCacheHit(b *testing.B) {
	c, counter := benchCache(b)
	ctx := context.Background()
	b.ReportAllocs()

	for b.Loop() {
		if _, err := c.Token(ctx); err != nil {
			b.Fatal(err)
		}
	}
	n, _ := counter.reset()
	b.ReportMetric(float64(n)/float64(b.N), "redis-cmds/op")
}

func BenchmarkCacheHitParallel(b *testing.B) {
	c, counter := benchCache(b)
	ctx := context.Background()
	b.ReportAllocs()

	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Token(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	n, _ := counter.reset()
	b.ReportMetric(float64(n)/float64(b.N), "redis-cmds/op")
}

var sinkToken string

// BenchmarkPlainVariable is the floor BenchmarkCacheHit compares against:
// reading a token held in an ordinary variable.
func BenchmarkPlainVariable(b *testing.B) {
	token := "TOKEN-in-a-variable"
	b.ReportAllocs()

	for b.Loop() {
		sinkToken = token
	}
}
