package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wxnotify/wxnotify/tasks"
	"github.com/wxnotify/wxnotify/worker"
)

func runStatus(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("status", "Show the queues and, for every configured account (or --appid), "+
		"the stops in force: what stopped it, why, and until when.", e)
	ov := newOverrides(fs)
	ov.add("redis-url", "REDIS_URL", "Redis URL")
	ov.add("queue-prefix", "QUEUE_PREFIX", "queue name prefix")
	appID := fs.String("appid", "", "show this account (default: WECHAT_APPID or the accounts file)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, rdb, err := operatorSetup(ctx, ov.getenv(e.getenv))
	if err != nil {
		return err
	}
	defer rdb.Close()

	insp := asynq.NewInspectorFromRedisClient(rdb)
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tPENDING\tACTIVE\tSCHEDULED\tRETRY/WAITING\tARCHIVED\tCOMPLETED\tPAUSED")
	for _, p := range []tasks.Priority{tasks.PriorityCritical, tasks.PriorityDefault, tasks.PriorityLow} {
		q := tasks.QueueName(cfg.QueuePrefix, p)
		info, err := insp.GetQueueInfo(q)
		if err != nil {
			fmt.Fprintf(tw, "%s\t(empty)\n", q)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%v\n", q, info.Pending, info.Active,
			info.Scheduled, info.Retry, info.Archived, info.Completed, info.Paused)
	}
	tw.Flush()

	ids := accountIDs(cfg, *appID)
	if len(ids) == 0 {
		fmt.Fprintln(e.stdout, "\nno account named: set WECHAT_APPID, WECHAT_ACCOUNTS_FILE "+
			"or --appid to see stops")
		return nil
	}
	fmt.Fprintln(e.stdout)
	for _, id := range ids {
		stops, err := worker.ListStops(ctx, rdb, cfg.KeyPrefix, id)
		if err != nil {
			return err
		}
		if len(stops) == 0 {
			fmt.Fprintf(e.stdout, "account %s: sending\n", id)
		}
		for _, st := range stops {
			fmt.Fprintf(e.stdout, "account %s: %s\n", id, describeStop(st))
		}
	}
	return nil
}

func describeStop(st worker.AccountStop) string {
	what := st.Kind
	if st.TemplateID != "" {
		what = "template " + st.TemplateID + " stopped"
	}
	when := "until " + st.Until.Local().Format(time.DateTime)
	if time.Now().After(st.Until) {
		when = "since " + st.Until.Local().Format(time.DateTime) + " waiting for a probe send to succeed"
	}
	return fmt.Sprintf("%s %s: %s (resume early with `wxnotify resume --appid %s`)",
		what, when, st.Reason, st.AppID)
}

func runResume(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("resume", "Clear an account's stops (and its template stops) after fixing the "+
		"cause,\nso waiting messages go out at their next wake-up instead of after the stop.", e)
	ov := newOverrides(fs)
	ov.add("redis-url", "REDIS_URL", "Redis URL")
	appID := fs.String("appid", "", "the account to resume (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *appID == "" {
		return errors.New("resume: --appid is required")
	}
	cfg, rdb, err := operatorSetup(ctx, ov.getenv(e.getenv))
	if err != nil {
		return err
	}
	defer rdb.Close()

	n, err := worker.Resume(ctx, rdb, cfg.KeyPrefix, *appID)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "account %s: cleared %d stop(s); waiting messages go out at their next "+
		"wake-up.\nA token fetch blocked by a misconfiguration answer retries within 5 minutes.\n", *appID, n)
	return nil
}

func operatorSetup(ctx context.Context, getenv func(string) string) (*config, redis.UniversalClient, error) {
	cfg, err := loadConfig(getenv, false)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	rdb := cfg.RedisOpt.MakeRedisClient().(redis.UniversalClient)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, nil, fmt.Errorf("redis at %s: %w; is it running? (REDIS_URL)", redactedRedisURL(cfg), err)
	}
	return cfg, rdb, nil
}

// pingRedis fails fast, naming the Redis, when it does not answer, instead
// of letting every enqueue wait out the client's retries.
func pingRedis(ctx context.Context, cfg *config) error {
	rdb := cfg.RedisOpt.MakeRedisClient().(redis.UniversalClient)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w; is it running? (REDIS_URL)", redactedRedisURL(cfg), err)
	}
	return nil
}

func accountIDs(cfg *config, flagID string) []string {
	if flagID != "" {
		return []string{flagID}
	}
	return cfg.appIDs()
}
