package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wxnotify/wxnotify/tasks"
	"github.com/wxnotify/wxnotify/wechat/wechattest"
)

// queuePrefix is the queue prefix of every scenario; each runs on a
// flushed private Redis, so one prefix is enough.
const queuePrefix = "wxbench"

// defaultQueue is where the scenarios' tasks wait.
var defaultQueue = tasks.QueueName(queuePrefix, tasks.PriorityDefault)

// openID is the recipient of message i: one per message, so that every
// delivery at the fake names the task it came from.
func openID(i int) string { return fmt.Sprintf("oBench%022d", i) }

// payload is message i: a realistic invoice reminder of about 300 bytes.
func payload(i int) *tasks.Payload {
	return &tasks.Payload{
		ID:         "invoice-" + strconv.Itoa(i) + ":due-1",
		ToUser:     openID(i),
		TemplateID: "TplInvoiceDue0000000000000000001",
		URL:        "https://pay.example.com/invoices/" + strconv.Itoa(i) + "?src=wechat",
		Data: map[string]tasks.Value{
			"thing1":  {Value: "物业费 2026年12月"},
			"amount2": {Value: "¥1,280.00"},
			"time3":   {Value: "2026年12月05日"},
		},
	}
}

// newProducer is a Producer on r with the scenarios' queue prefix.
func newProducer(r *redisProc) *tasks.Producer {
	return tasks.NewProducer(asynq.RedisClientOpt{Addr: r.addr()},
		tasks.ProducerOptions{QueuePrefix: queuePrefix})
}

// enqueueRange enqueues messages [from, to) with parallel goroutines.
func enqueueRange(ctx context.Context, prod *tasks.Producer, from, to, parallel int) error {
	var next atomic.Int64
	next.Store(int64(from))
	return fanOut(parallel, func() error {
		for {
			i := int(next.Add(1) - 1)
			if i >= to {
				return nil
			}
			if _, err := prod.Enqueue(ctx, payload(i)); err != nil {
				return fmt.Errorf("enqueue message %d: %w", i, err)
			}
		}
	})
}

// fanOut runs f on n goroutines and returns the first error.
func fanOut(n int, f func() error) error {
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	return first
}

// progress watches a queue drain: how many of n tasks have left pending,
// active, retry and scheduled, and when.
type progress struct {
	first, last time.Time // first seen progress, all done
	firstDone   int       // done count at first
	done        int
	polls       int // polls sent (2 LLEN, 2 ZCARD), to subtract from commandstats
}

// rate is tasks per second between the first progress and the end.
func (p progress) rate() float64 {
	d := p.last.Sub(p.first).Seconds()
	if d <= 0 || p.done <= p.firstDone {
		return 0
	}
	return float64(p.done-p.firstDone) / d
}

// watchDrain polls the queue every 10 ms until all n tasks are done
// (completed or archived), or limit passes.
func watchDrain(ctx context.Context, rdb *redis.Client, n int, limit time.Duration) (progress, error) {
	var pr progress
	base := "asynq:{" + defaultQueue + "}:"
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		pipe := rdb.Pipeline()
		pend, act := pipe.LLen(ctx, base+"pending"), pipe.LLen(ctx, base+"active")
		retry, sched := pipe.ZCard(ctx, base+"retry"), pipe.ZCard(ctx, base+"scheduled")
		if _, err := pipe.Exec(ctx); err != nil {
			return pr, fmt.Errorf("watch queue: %w", err)
		}
		pr.polls++
		left := pend.Val() + act.Val() + retry.Val() + sched.Val()
		now, done := time.Now(), n-int(left)
		if done > 0 && pr.first.IsZero() {
			pr.first, pr.firstDone = now, done
		}
		pr.done, pr.last = done, now
		if done >= n {
			return pr, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return pr, fmt.Errorf("queue not drained in %s: %d of %d done", limit, pr.done, n)
}

// workerEnv is the environment of a `wxnotify worker` process.
func workerEnv(r *redisProc, fake *wechattest.Server, conc int, extra map[string]string) map[string]string {
	env := map[string]string{
		"REDIS_URL":          r.url(),
		"WECHAT_APPID":       wechattest.DefaultAppID,
		"WECHAT_SECRET":      wechattest.DefaultSecret,
		"WECHAT_API_BASE":    fake.URL(),
		"WORKER_CONCURRENCY": strconv.Itoa(conc),
		"QUEUE_PREFIX":       queuePrefix,
		"REDIS_KEY_PREFIX":   "wxbench:",
		"LOG_LEVEL":          "warn",
		"LOG_FORMAT":         "json",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// startWorkers starts n `wxnotify worker` processes.
func (l *lab) startWorkers(n int, env map[string]string) ([]*proc, error) {
	var ps []*proc
	for i := range n {
		p, err := l.spawn("worker"+strconv.Itoa(i), l.bin, []string{"worker"}, env)
		if err != nil {
			stopAll(ps)
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// startRef starts a reference consumer process of kind noop or naive.
func (l *lab) startRef(kind string, r *redisProc, fake *wechattest.Server, conc int) (*proc, error) {
	return l.spawn("ref-"+kind, l.self, []string{"ref", "-kind", kind, "-redis", r.addr(),
		"-queue-prefix", queuePrefix, "-concurrency", strconv.Itoa(conc), "-api", fake.URL()},
		refEnv())
}

// stopAll sends SIGTERM to every process and waits for them.
func stopAll(ps []*proc) {
	for _, p := range ps {
		p.cmd.Process.Signal(sigterm)
	}
	for _, p := range ps {
		p.stop(sigterm, 40*time.Second)
	}
}
