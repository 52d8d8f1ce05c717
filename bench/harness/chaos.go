package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wxnotify/wxnotify/tasks"
	"github.com/wxnotify/wxnotify/wechat/wechattest"
)

// chaosCase is one fault scenario.
type chaosCase struct {
	name, what string
	good       int // valid messages, delivered unless they go to unfollowed
	unfollowed int // valid messages to recipients that do not follow (43004)
	bad        int // malformed tasks written past the producer
	procs      int
	latency    time.Duration
	faults     wechattest.Faults
	aof        bool
	env        map[string]string
	limit      time.Duration
	smoke      bool // also part of the smoke run
	// action runs while the workers deliver and returns a note.
	action func(ctx context.Context, c *chaosRun) (string, error)
}

// chaosEnv shortens the worker's waits so that a scenario ends in seconds;
// the logic that decides them is the same.
var chaosEnv = map[string]string{
	"WORKER_RETRY_BASE":           "200ms",
	"WORKER_RETRY_CAP":            "2s",
	"WECHAT_HTTP_TIMEOUT":         "2s",
	"WORKER_SHUTDOWN_TIMEOUT":     "5s",
	"WORKER_SLOWDOWN":             "2s",
	"WECHAT_QUOTA_PROBE_INTERVAL": "2s",
	"WORKER_ACCOUNT_STOP":         "2s",
}

func chaosCases(smoke bool) []chaosCase {
	scale := func(n int) int {
		if smoke {
			return max(n/10, 30)
		}
		return n
	}
	all := []chaosCase{
		{name: "sigkill", what: "SIGKILL of one of 2 workers after 1,000 deliveries; " +
			"the fake answers after 100 ms", good: 3000, procs: 2, latency: 100 * time.Millisecond,
			limit: 4 * time.Minute, action: killWorker(1000, syscall.SIGKILL)},
		{name: "redis-restart", what: "private redis-server with AOF (appendfsync everysec) " +
			"killed with SIGKILL after 800 deliveries, restarted 10 s later from its AOF",
			good: 3000, procs: 2, latency: 50 * time.Millisecond, aof: true,
			limit: 4 * time.Minute, action: restartRedis(800, 10*time.Second)},
		{name: "sigterm", what: "SIGTERM of one of 2 workers after a quarter is delivered; " +
			"the fake answers after 100 ms", good: scale(2000), procs: 2,
			latency: 100 * time.Millisecond, limit: time.Minute, smoke: true,
			action: killWorker(scale(2000)/4, syscall.SIGTERM)},
		{name: "errcode-1", what: "a burst: the first 300 sends answer errcode -1 (system busy)",
			good: scale(1000), procs: 2, limit: time.Minute, smoke: true,
			faults: wechattest.Faults{ErrcodeFor: []wechattest.ErrcodeRule{{Errcode: -1,
				Times: scale(300)}}}},
		{name: "http-5xx", what: "30% of sends answer HTTP 500/502/503 with an HTML body",
			good: scale(1000), procs: 2, limit: time.Minute,
			faults: wechattest.Faults{HTTP5xxRate: 0.3}},
		{name: "timeouts", what: "10% of sends are delivered but answered after 3 s, past the " +
			"2 s WECHAT_HTTP_TIMEOUT (the resend must be caught by client_msg_id)",
			good: scale(1000), procs: 2, limit: time.Minute,
			faults: wechattest.Faults{SlowRate: 0.1, SlowDelay: 3 * time.Second}},
		{name: "token-rotation", what: "the account's tokens revoked 5 times, 150 ms apart, " +
			"while sending (40001, refresh and replay)", good: scale(2000), procs: 2,
			latency: 50 * time.Millisecond, limit: time.Minute, smoke: true, action: rotateTokens(5)},
		{name: "errcode-45011", what: "the first 20 sends answer 45011 (minute quota); " +
			"WORKER_SLOWDOWN 2 s", good: scale(1000), procs: 2, limit: time.Minute,
			faults: wechattest.Faults{ErrcodeFor: []wechattest.ErrcodeRule{{Errcode: 45011, Times: 20}}}},
		{name: "errcode-45009", what: "the first 10 sends answer 45009 (daily quota); " +
			"probe every 2 s", good: scale(1000), procs: 2, limit: time.Minute,
			faults: wechattest.Faults{ErrcodeFor: []wechattest.ErrcodeRule{{Errcode: 45009, Times: 10}}}},
		{name: "malformed", what: "a flood of malformed tasks written past the producer " +
			"(not JSON, missing/invalid fields, unknown appid) mixed with valid ones, and " +
			"some recipients that do not follow (43004)", good: scale(500), unfollowed: scale(50),
			bad: scale(500), procs: 2, limit: time.Minute, smoke: true},
	}
	var out []chaosCase
	for _, c := range all {
		if !smoke || c.smoke {
			out = append(out, c)
		}
	}
	return out
}

// chaosSuite runs the cases in three parallel lanes (the two slow
// recovery cases each on their own) and reports them.
func (l *lab) chaosSuite(ctx context.Context, o options) (string, int, error) {
	cases := chaosCases(o.smoke)
	if o.only != "" {
		cases = slices.DeleteFunc(cases, func(c chaosCase) bool { return c.name != o.only })
	}
	results := make([]chaosResult, len(cases))
	errs := make([]error, len(cases))
	lanes := map[string][]int{}
	for i, c := range cases {
		lane := "rest"
		if c.name == "sigkill" || c.name == "redis-restart" {
			lane = c.name
		}
		lanes[lane] = append(lanes[lane], i)
	}
	var wg sync.WaitGroup
	for _, idx := range lanes {
		wg.Go(func() {
			for _, i := range idx {
				fmt.Fprintf(os.Stderr, "harness: chaos %s ...\n", cases[i].name)
				results[i], errs[i] = l.runChaos(ctx, cases[i])
				fmt.Fprintf(os.Stderr, "harness: chaos %s: %s\n", cases[i].name, results[i].summary())
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return "", 0, err
		}
	}
	return chaosReport(o, cases, results)
}

// chaosRun is a running scenario.
type chaosRun struct {
	r       *redisProc
	fake    *wechattest.Server
	workers []*proc
}

// delivered counts distinct recipients the fake delivered to.
func (c *chaosRun) delivered() int { return len(perRecipient(c.fake.Deliveries())) }

// waitDelivered waits until n recipients got their message.
func (c *chaosRun) waitDelivered(ctx context.Context, n int) error {
	for c.delivered() < n {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func killWorker(after int, sig syscall.Signal) func(context.Context, *chaosRun) (string, error) {
	return func(ctx context.Context, c *chaosRun) (string, error) {
		if err := c.waitDelivered(ctx, after); err != nil {
			return "", err
		}
		took := c.workers[0].stop(sig, 30*time.Second)
		code := c.workers[0].cmd.ProcessState.ExitCode()
		return fmt.Sprintf("signal at %d delivered; the process exited %s later (exit code %d)",
			c.delivered(), took.Round(time.Millisecond), code), nil
	}
}

func restartRedis(after int, down time.Duration) func(context.Context, *chaosRun) (string, error) {
	return func(ctx context.Context, c *chaosRun) (string, error) {
		if err := c.waitDelivered(ctx, after); err != nil {
			return "", err
		}
		at := c.delivered()
		c.r.kill()
		time.Sleep(down)
		if err := c.r.start(ctx); err != nil {
			return "", err
		}
		return fmt.Sprintf("Redis killed at %d delivered, back after %s", at, down), nil
	}
}

func rotateTokens(times int) func(context.Context, *chaosRun) (string, error) {
	return func(ctx context.Context, c *chaosRun) (string, error) {
		if err := c.waitDelivered(ctx, 1); err != nil {
			return "", err
		}
		for range times {
			c.fake.RotateToken(wechattest.DefaultAppID)
			time.Sleep(150 * time.Millisecond)
		}
		st := c.fake.Stats()
		return fmt.Sprintf("%d token calls, %d answered 40001", st.TokenCalls,
			st.Errcodes[40001]), nil
	}
}

// runChaos runs one case on its own Redis and fake.
func (l *lab) runChaos(ctx context.Context, cc chaosCase) (chaosResult, error) {
	res := chaosResult{expect: map[string]string{}}
	r, err := l.startRedis(ctx, cc.aof)
	if err != nil {
		return res, err
	}
	defer r.close()
	unf := map[string]bool{}
	for i := cc.good; i < cc.good+cc.unfollowed; i++ {
		unf[openID(i)] = true
		res.expect[payload(i).ID] = "43004"
	}
	faults := cc.faults
	faults.Latency = cc.latency
	fake, err := startFake(wechattest.Config{Faults: faults, Unfollowed: unf, Seed: 7})
	if err != nil {
		return res, err
	}
	defer fake.Close()

	if err := enqueueChaos(ctx, r, cc, res.expect); err != nil {
		return res, err
	}
	res.enqueued = cc.good + cc.unfollowed + cc.bad
	env := workerEnv(r, fake, 50, chaosEnv)
	maps.Copy(env, cc.env)
	ws, err := l.startWorkers(cc.procs, env)
	if err != nil {
		return res, err
	}
	defer stopAll(ws)
	return l.settle(ctx, cc, &chaosRun{r: r, fake: fake, workers: ws}, res)
}

// settle runs the action, waits for every task to end (or the limit),
// and counts what happened.
func (l *lab) settle(ctx context.Context, cc chaosCase, run *chaosRun, res chaosResult) (
	chaosResult, error) {
	start := time.Now()
	if cc.action != nil {
		note, err := cc.action(ctx, run)
		if err != nil {
			return res, err
		}
		res.note = note
	}
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: run.r.addr()})
	defer insp.Close()
	deadline := start.Add(cc.limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		qi, err := insp.GetQueueInfo(defaultQueue)
		if err == nil && qi.Pending+qi.Active+qi.Retry+qi.Scheduled == 0 &&
			qi.Completed+qi.Archived == res.enqueued {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	res.took = time.Since(start)
	return res.count(insp, cc, run.fake)
}

// enqueueChaos enqueues the valid messages through the producer and the
// malformed ones through a plain asynq client, recording the reason each
// malformed one must be archived with.
func enqueueChaos(ctx context.Context, r *redisProc, cc chaosCase, expect map[string]string) error {
	prod := newProducer(r)
	defer prod.Close()
	if err := enqueueRange(ctx, prod, 0, cc.good+cc.unfollowed, 16); err != nil {
		return err
	}
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: r.addr()})
	defer client.Close()
	for i := range cc.bad {
		b := malformed[i%len(malformed)]
		id := fmt.Sprintf("bad-%s-%d", b.kind, i)
		t := asynq.NewTask(tasks.TypeSendTemplate, []byte(b.body))
		if _, err := client.EnqueueContext(ctx, t, asynq.Queue(defaultQueue), asynq.TaskID(id),
			asynq.MaxRetry(tasks.DefaultMaxRetry)); err != nil {
			return fmt.Errorf("enqueue malformed: %w", err)
		}
		expect[id] = b.reason
	}
	return nil
}

// malformed are payloads the producer would refuse, with the words the
// archive reason must hold.
var malformed = []struct{ kind, body, reason string }{
	{"notjson", `{"touser": "oX`, "payload cannot be decoded"},
	{"notobject", `[1, 2, 3]`, "payload cannot be decoded"},
	{"notouser", `{"template_id":"T1","data":{"thing1":{"value":"a"}}}`, "touser"},
	{"badopenid", `{"touser":"o bad id!","template_id":"T1","data":{"thing1":{"value":"a"}}}`,
		"touser"},
	{"nodata", `{"touser":"oBenchNoData000000001","template_id":"T1"}`, "data"},
	{"toolong", `{"touser":"oBenchTooLong00000001","template_id":"T1","data":{"thing1":` +
		`{"value":"一二三四五六七八九十一二三四五六七八九十一"}}}`, "thing1"},
	{"badappid", `{"appid":"wx0000000000000bad","touser":"oBenchAppID000000001",` +
		`"template_id":"T1","data":{"thing1":{"value":"a"}}}`, "appid"},
	{"wrongtype", `{"touser":"oBenchType0000000001","template_id":"T1","data":"x"}`,
		"payload cannot be decoded"},
}
