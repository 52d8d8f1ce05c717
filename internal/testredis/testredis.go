// Package testredis gives tests a real Redis: the one at
// WXNOTIFY_TEST_REDIS_ADDR (default 127.0.0.1:6379), as `make test` sets it
// up. Each test gets its own key prefix and queue prefix and deletes what
// it wrote. When Redis is unreachable the test is skipped, except under
// CI=true, where it fails.
package testredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// DB is the database index every wxnotify test uses. Tests never flush it;
// they delete their own prefixes.
const DB = 9

// Addr is the address of the test Redis.
func Addr() string {
	if a := os.Getenv("WXNOTIFY_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// URL is the test Redis as a REDIS_URL.
func URL() string { return "redis://" + Addr() + "/" + strconv.Itoa(DB) }

// ConnOpt is the test Redis as an asynq connection option.
func ConnOpt() asynq.RedisClientOpt { return asynq.RedisClientOpt{Addr: Addr(), DB: DB} }

// Env is one test's slice of Redis.
type Env struct {
	Client *redis.Client
	// Prefix is unique to the test; use it for keys ("<Prefix>:...")
	// and queue names.
	Prefix string
}

// New connects to the test Redis, or skips (fails under CI=true) when it
// is down. Everything under the test's prefix, and the asynq queues named
// with it, is deleted when the test ends.
func New(t testing.TB) *Env {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: Addr(), DB: DB})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		msg := "redis at " + Addr() + " unreachable (" + err.Error() +
			"); run the tests with `make test`, which starts one"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	e := &Env{Client: c, Prefix: "t" + randomHex(6)}
	t.Cleanup(func() {
		e.cleanup()
		c.Close()
	})
	return e
}

// cleanup deletes the test's own keys and the asynq keys of queues named
// with its prefix.
func (e *Env) cleanup() {
	ctx := context.Background()
	for _, pattern := range []string{e.Prefix + "*", "asynq:{" + e.Prefix + "*"} {
		iter := e.Client.Scan(ctx, 0, pattern, 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			e.Client.Del(ctx, keys[:n]...)
			keys = keys[n:]
		}
	}
	qs, _ := e.Client.SMembers(ctx, "asynq:queues").Result()
	for _, q := range qs {
		if len(q) >= len(e.Prefix) && q[:len(e.Prefix)] == e.Prefix {
			e.Client.SRem(ctx, "asynq:queues", q)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
