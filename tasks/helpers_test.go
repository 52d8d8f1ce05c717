package tasks_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wxnotify/wxnotify/tasks"
)

// The Redis the queue-side tests use. DB 13 belongs to this package's
// tests; each test also works under its own queue prefix.
const (
	testRedisAddr = "127.0.0.1:6379"
	testRedisDB   = 13
)

// validPayload returns a payment-due reminder that passes Validate.
func validPayload() *tasks.Payload {
	return &tasks.Payload{
		ID:         "invoice-2024-0042-due",
		ToUser:     "oVq2b5Kx9mTz1YpLw3Hc8dRf4EaG",
		TemplateID: "Zc1x9QvB3nTm7LpA5sWd2hYe8kRf6GjU4oNi0bXyMqT",
		URL:        "https://pay.example.com/invoices/42?from=wechat&step=pay",
		Data: map[string]tasks.Value{
			"thing1":            {Value: "2024年4月物业费"},
			"amount2":           {Value: "¥1,280.00"},
			"time3":             {Value: "2024年4月30日 23:59"},
			"character_string4": {Value: "INV-2024-0042"},
		},
		ClientMsgID: "invoice-2024-0042-due",
	}
}

// testRedis returns the connection options of the test Redis. It skips
// the test when Redis is down, or fails it when CI=true.
func testRedis(t *testing.T) asynq.RedisClientOpt {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: testRedisAddr, DB: testRedisDB})
	defer rc.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rc.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis at %s is needed and CI=true: %v", testRedisAddr, err)
		}
		t.Skipf("redis at %s unreachable, skipping (CI=true fails instead): %v",
			testRedisAddr, err)
	}
	return asynq.RedisClientOpt{Addr: testRedisAddr, DB: testRedisDB}
}

// testPrefix returns a fresh queue prefix and deletes its queues when
// the test ends.
func testPrefix(t *testing.T, opt asynq.RedisClientOpt) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "test-tasks-" + hex.EncodeToString(b)

	t.Cleanup(func() {
		insp := asynq.NewInspector(opt)
		defer insp.Close()
		for q := range tasks.Queues(prefix) {
			err := insp.DeleteQueue(q, true)
			if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
				t.Errorf("delete queue %s: %v", q, err)
			}
		}
	})
	return prefix
}

// newInspector returns an Inspector closed when the test ends.
func newInspector(t *testing.T, opt asynq.RedisClientOpt) *asynq.Inspector {
	t.Helper()
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { insp.Close() })
	return insp
}

// newProducer returns a Producer closed when the test ends.
func newProducer(t *testing.T, opt asynq.RedisClientOpt, o tasks.ProducerOptions) *tasks.Producer {
	t.Helper()
	p := tasks.NewProducer(opt, o)
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close producer: %v", err)
		}
	})
	return p
}

// problemsOf returns the field problems held by err as strings, or fails
// the test when err holds no *tasks.ValidationError.
func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	var ve *tasks.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) holds no *tasks.ValidationError", err, err)
	}
	out := make([]string, len(ve.Errors))
	for i, fe := range ve.Errors {
		out[i] = fe.Error()
	}
	return out
}
