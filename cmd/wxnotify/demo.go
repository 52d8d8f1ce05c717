package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wxnotify/wxnotify/tasks"
	"github.com/wxnotify/wxnotify/wechat/wechattest"
	"github.com/wxnotify/wxnotify/worker"
)

// The demo's made-up account, recipients and template.
const (
	demoAppID      = "wxdemo0000000001"
	demoSecret     = "demo-secret-not-real"
	demoTemplate   = "TPL_PAYMENT_DUE"
	demoUnfollowed = "oDEMOunfollowed00000000000x"
)

// demoMessage is one reminder the demo enqueues, with what a reader
// should expect to happen to it.
type demoMessage struct {
	label   string
	payload tasks.Payload
}

func runDemo(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("demo", "Run an embedded Redis (or REDIS_URL), the fake WeChat server and a "+
		"worker in this process,\nenqueue a few payment-due reminders, show what happened to "+
		"each, and exit.", e)
	ov := newOverrides(fs)
	ov.add("redis-url", "REDIS_URL", "use this Redis instead of the embedded one")
	timeout := fs.Duration("timeout", 60*time.Second, "give up waiting for the worker after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	getenv := ov.getenv(e.getenv)

	redisURL, stopRedis, err := demoRedis(getenv("REDIS_URL"))
	if err != nil {
		return err
	}
	defer stopRedis()

	fake := wechattest.NewServer(wechattest.Config{
		Accounts:   map[string]string{demoAppID: demoSecret},
		Templates:  map[string]bool{demoTemplate: true},
		Unfollowed: map[string]bool{demoUnfollowed: true},
	})
	if err := fake.Start("127.0.0.1:0"); err != nil {
		return fmt.Errorf("start the fake wechat server: %w", err)
	}
	defer fake.Close()
	apiBase := fake.URL()

	cfg, err := loadConfig(func(name string) string {
		switch name {
		case "REDIS_URL":
			return redisURL
		case "WECHAT_API_BASE":
			return apiBase
		case "WECHAT_APPID":
			return demoAppID
		case "WECHAT_SECRET":
			return demoSecret
		case "QUEUE_PREFIX":
			// Apart from the real queues, unless told otherwise.
			if v := getenv(name); v != "" {
				return v
			}
			return "wxnotify-demo"
		case "LOG_FORMAT":
			return "console"
		}
		return getenv(name)
	}, true)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	return demo(ctx, cfg, *timeout, e)
}

// demoRedis returns the Redis the demo uses: REDIS_URL when given,
// otherwise an in-process one that goes away with the demo.
func demoRedis(url string) (string, func(), error) {
	if url != "" {
		return url, func() {}, nil
	}
	mr, err := miniredis.Run()
	if err != nil {
		return "", nil, fmt.Errorf("start embedded redis: %w", err)
	}
	return "redis://" + mr.Addr() + "/0", mr.Close, nil
}

func demo(ctx context.Context, cfg *config, timeout time.Duration, e *env) error {
	log := newLogger(cfg, e.stderr, true)
	rdb := cfg.RedisOpt.MakeRedisClient().(redis.UniversalClient)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w", redactedRedisURL(cfg), err)
	}

	w, err := worker.New(worker.Config{
		Redis:       rdb,
		Accounts:    buildAccounts(cfg, rdb, log),
		QueuePrefix: cfg.QueuePrefix,
		KeyPrefix:   cfg.KeyPrefix,
		Concurrency: 10,
		Logger:      log,
	})
	if err != nil {
		return err
	}
	prod := tasks.NewProducer(cfg.RedisOpt, tasks.ProducerOptions{
		QueuePrefix: cfg.QueuePrefix,
		Rules:       tasks.Rules{AppIDs: cfg.appIDs()},
	})
	defer prod.Close()

	fmt.Fprintf(e.stdout, "wxnotify demo: Redis %s, fake WeChat %s, account %s\n\n",
		redactedRedisURL(cfg), cfg.APIBase, demoAppID)
	rows := enqueueDemo(ctx, prod, e.stdout)

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()

	insp := asynq.NewInspectorFromRedisClient(rdb)
	waitErr := waitSettled(ctx, insp, rows, timeout)
	stop()
	if err := <-done; err != nil {
		return err
	}

	printDemo(e.stdout, rows)
	if waitErr != nil {
		return waitErr
	}
	return nil
}

// demoRow is what happened to one demo message.
type demoRow struct {
	label   string
	openID  string
	queue   string
	taskID  string
	outcome string
	settled bool
}

func demoMessages(run string) []demoMessage {
	due := func(n int, user, thing, amount, date string) tasks.Payload {
		return tasks.Payload{
			ID:         fmt.Sprintf("demo-%s-invoice-%d:due-1", run, 8810+n),
			ToUser:     user,
			TemplateID: demoTemplate,
			URL:        "https://pay.example.com/invoices/" + strconv.Itoa(8810+n) + "?src=wechat&ch=tpl",
			Priority:   tasks.PriorityCritical,
			Data: map[string]tasks.Value{
				"thing1":            {Value: thing},
				"amount2":           {Value: amount},
				"time3":             {Value: date},
				"character_string4": {Value: "INV-" + strconv.Itoa(8810+n)},
			},
		}
	}
	bad := due(9, "oDEMO0000000000000000000009", "宽带月费", "¥99.00", "2026年12月10日")
	bad.Data["thing1"] = tasks.Value{Value: "宽带月费\n请尽快支付"}
	return []demoMessage{
		{"payment due", due(1, "oDEMO0000000000000000000001", "物业费 2026年12月", "¥1,280.00", "2026年12月05日")},
		{"payment due", due(2, "oDEMO0000000000000000000002", "房租 12月", "¥3,200.00", "2026年12月01日")},
		{"payment due", due(3, "oDEMO0000000000000000000003", "水电燃气", "¥236.50", "2026年12月08日")},
		{"payment due", due(4, "oDEMO0000000000000000000004", "会员年费", "¥398.00", "2026年12月15日")},
		{"payment due", due(5, "oDEMO0000000000000000000005", "停车费 12月", "¥300.00", "2026年12月03日")},
		{"recipient unfollowed", due(6, demoUnfollowed, "保险续费", "¥1,999.00", "2026年12月20日")},
		{"invalid payload", bad},
	}
}

func enqueueDemo(ctx context.Context, prod *tasks.Producer, out io.Writer) []*demoRow {
	run := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	var rows []*demoRow
	for _, m := range demoMessages(run) {
		p := m.payload
		row := &demoRow{label: m.label, openID: worker.MaskOpenID(p.ToUser)}
		info, err := prod.Enqueue(ctx, &p)
		if err != nil {
			reason := err.Error()
			var ve *tasks.ValidationError
			if errors.As(err, &ve) {
				reason = ve.Error()
			}
			row.outcome, row.settled = "rejected at enqueue: "+reason, true
			fmt.Fprintf(out, "  enqueue %-22s rejected: %s\n", m.label, reason)
		} else {
			row.queue, row.taskID = info.Queue, info.ID
			fmt.Fprintf(out, "  enqueue %-22s task %s\n", m.label, info.ID)
		}
		rows = append(rows, row)
	}
	fmt.Fprintln(out)
	return rows
}

// waitSettled polls the queue until every enqueued demo task is completed
// or archived, or the timeout passes.
func waitSettled(ctx context.Context, insp *asynq.Inspector, rows []*demoRow, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pending := 0
		for _, r := range rows {
			if !r.settled {
				settle(insp, r)
			}
			if !r.settled {
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d demo message(s) still not settled after %s; "+
				"see the worker log above", pending, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func settle(insp *asynq.Inspector, r *demoRow) {
	info, err := insp.GetTaskInfo(r.queue, r.taskID)
	if err != nil {
		return
	}
	switch info.State {
	case asynq.TaskStateCompleted:
		var res worker.Result
		if json.Unmarshal(info.Result, &res) == nil {
			r.outcome = "delivered, msgid " + strconv.FormatInt(res.MsgID, 10)
		} else {
			r.outcome = "delivered"
		}
		r.settled = true
	case asynq.TaskStateArchived:
		r.outcome, r.settled = "archived: "+info.LastErr, true
	case asynq.TaskStateRetry:
		r.outcome = "retrying: " + info.LastErr
	}
}

func printDemo(out io.Writer, rows []*demoRow) {
	fmt.Fprintln(out, "\nWhat happened to each message:")
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  MESSAGE\tOPENID\tOUTCOME")
	for _, r := range rows {
		outcome := r.outcome
		if outcome == "" {
			outcome = "not settled"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.label, r.openID, outcome)
	}
	tw.Flush()
	fmt.Fprintln(out, "\nDelivered messages carry WeChat's msgid as the task result; the archived")
	fmt.Fprintln(out, "one keeps its reason for an operator (asynqmon, or `asynq task ls`); the")
	fmt.Fprintln(out, "rejected one never reached the queue.")
}
