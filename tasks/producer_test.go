package tasks_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wxnotify/wxnotify/tasks"
)

func TestProducerAppliesItsOptions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		o    tasks.ProducerOptions
		want wantTask
	}{
		{"zero options", tasks.ProducerOptions{},
			wantTask{maxRetry: tasks.DefaultMaxRetry, timeout: time.Minute, retention: 24 * time.Hour}},
		{"set options",
			tasks.ProducerOptions{MaxRetry: 3, Timeout: 7 * time.Second, Retention: time.Hour},
			wantTask{maxRetry: 3, timeout: 7 * time.Second, retention: time.Hour}},
		{"timeout rounded up to whole seconds",
			tasks.ProducerOptions{Timeout: 1500 * time.Millisecond},
			wantTask{maxRetry: tasks.DefaultMaxRetry, timeout: 2 * time.Second, retention: 24 * time.Hour}},
		{"negative retry and retention", tasks.ProducerOptions{MaxRetry: -1, Retention: -1},
			wantTask{maxRetry: 0, timeout: time.Minute, retention: 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opt := testRedis(t)
			tc.o.QueuePrefix = testPrefix(t, opt)
			prod := newProducer(t, opt, tc.o)
			p := validPayload()
			p.Priority = tasks.PriorityCritical

			if _, err := prod.Enqueue(context.Background(), p); err != nil {
				t.Fatal(err)
			}

			tc.want.queue = tc.o.QueuePrefix + ":critical"
			assertTaskInfo(t, newInspector(t, opt), tc.want.queue, p.ID, tc.want)
		})
	}
}

func TestProducerCallerOptionsOverrideItsOwn(t *testing.T) {
	t.Parallel()
	opt := testRedis(t)
	prefix := testPrefix(t, opt)
	prod := newProducer(t, opt, tasks.ProducerOptions{QueuePrefix: prefix, MaxRetry: 3})

	info, err := prod.Enqueue(context.Background(), validPayload(), asynq.MaxRetry(1))
	if err != nil {
		t.Fatal(err)
	}

	if info.MaxRetry != 1 || info.Queue != prefix+":default" {
		t.Errorf("task = queue %s max retry %d, want %s:default and 1",
			info.Queue, info.MaxRetry, prefix)
	}
}

func TestProducerRefusesDuplicateID(t *testing.T) {
	t.Parallel()
	opt := testRedis(t)
	prefix := testPrefix(t, opt)
	prod := newProducer(t, opt, tasks.ProducerOptions{QueuePrefix: prefix})
	ctx := context.Background()
	if _, err := prod.Enqueue(ctx, validPayload()); err != nil {
		t.Fatal(err)
	}

	again := validPayload()
	again.Data["thing1"] = tasks.Value{Value: "内容不同但id相同"}
	info, err := prod.Enqueue(ctx, again)

	if info != nil || !errors.Is(err, tasks.ErrDuplicate) {
		t.Fatalf("second Enqueue = %v, %v; want ErrDuplicate", info, err)
	}
	if !strings.Contains(err.Error(), `"invoice-2024-0042-due"`) {
		t.Errorf("error %q does not name the id", err)
	}
	pending, err := newInspector(t, opt).ListPendingTasks(prefix + ":default")
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || !strings.Contains(string(pending[0].Payload), "物业费") {
		t.Errorf("pending tasks = %d, want only the first one", len(pending))
	}
}

func TestProducerDuplicateErrorNamesTheCallerTaskID(t *testing.T) {
	t.Parallel()
	opt := testRedis(t)
	prod := newProducer(t, opt, tasks.ProducerOptions{QueuePrefix: testPrefix(t, opt)})
	ctx := context.Background()
	p := validPayload()
	p.ID = ""
	if _, err := prod.Enqueue(ctx, p, asynq.TaskID("from-option")); err != nil {
		t.Fatal(err)
	}

	_, err := prod.Enqueue(ctx, p, asynq.TaskID("from-option"))

	if !errors.Is(err, tasks.ErrDuplicate) || !strings.Contains(err.Error(), `"from-option"`) {
		t.Errorf("second Enqueue = %v, want ErrDuplicate naming from-option", err)
	}
}

func TestProducerKeepsInvalidPayloadsOutOfRedis(t *testing.T) {
	t.Parallel()
	opt := testRedis(t)
	prefix := testPrefix(t, opt)
	rules := tasks.Rules{AppIDs: []string{"wxa", "wxb"}}
	prod := newProducer(t, opt, tasks.ProducerOptions{QueuePrefix: prefix, Rules: rules})

	info, err := prod.Enqueue(context.Background(), validPayload())

	got := problemsOf(t, err)
	want := []string{"appid: required when several accounts are configured"}
	if info != nil || !slices.Equal(got, want) {
		t.Errorf("Enqueue = %v, problems %q", info, got)
	}
	if keys := redisKeys(t, "asynq:{"+prefix+"*"); len(keys) != 0 {
		t.Errorf("redis holds %v after a refused payload", keys)
	}
	queues, err := newInspector(t, opt).Queues()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queues {
		if strings.HasPrefix(q, prefix) {
			t.Errorf("queue %s was created for a refused payload", q)
		}
	}
}

func TestProducerRefusesSubSecondTimeoutOption(t *testing.T) {
	t.Parallel()
	opt := testRedis(t)
	prefix := testPrefix(t, opt)
	prod := newProducer(t, opt, tasks.ProducerOptions{QueuePrefix: prefix})

	half := asynq.Timeout(500 * time.Millisecond)
	_, err := prod.Enqueue(context.Background(), validPayload(), half)

	if err == nil || !strings.Contains(err.Error(), "timeout 500ms") {
		t.Errorf("Enqueue = %v, want the timeout refused", err)
	}
	if keys := redisKeys(t, "asynq:{"+prefix+"*"); len(keys) != 0 {
		t.Errorf("redis holds %v after a refused option", keys)
	}
}

func TestProducerWrapsRedisFailures(t *testing.T) {
	t.Parallel()
	prod := tasks.NewProducer(asynq.RedisClientOpt{Addr: "127.0.0.1:1", DialTimeout: time.Second},
		tasks.ProducerOptions{})
	defer prod.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err := prod.Enqueue(ctx, validPayload())

	var ve *tasks.ValidationError
	if err == nil || errors.Is(err, tasks.ErrDuplicate) || errors.As(err, &ve) {
		t.Fatalf("Enqueue = %v, want a Redis error", err)
	}
	if !strings.HasPrefix(err.Error(), "enqueue: ") {
		t.Errorf("error %q lacks the enqueue context", err)
	}
}

func TestProducerFromClientLeavesTheClientOpen(t *testing.T) {
	t.Parallel()
	opt := testRedis(t)
	client := asynq.NewClient(opt)
	defer client.Close()
	o := tasks.ProducerOptions{QueuePrefix: testPrefix(t, opt)}
	prod := tasks.NewProducerFromClient(client, o)
	if _, err := prod.Enqueue(context.Background(), validPayload()); err != nil {
		t.Fatal(err)
	}

	if err := prod.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}

	if err := client.Ping(); err != nil {
		t.Errorf("client after Producer.Close: Ping = %v, want it still open", err)
	}
}

func TestProducerCloseClosesItsOwnConnection(t *testing.T) {
	t.Parallel()
	opt := testRedis(t)
	prod := tasks.NewProducer(opt, tasks.ProducerOptions{QueuePrefix: testPrefix(t, opt)})
	if err := prod.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}

	_, err := prod.Enqueue(context.Background(), validPayload())

	if err == nil {
		t.Error("Enqueue after Close succeeded, want the closed connection to fail")
	}
}

// redisKeys lists the keys of the test DB matching pattern.
func redisKeys(t *testing.T, pattern string) []string {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: testRedisAddr, DB: testRedisDB})
	defer rc.Close()

	var keys []string
	iter := rc.Scan(context.Background(), 0, pattern, 100).Iterator()
	for iter.Next(context.Background()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("scan %s: %v", pattern, err)
	}
	return keys
}
