package main

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/wxnotify/wxnotify/wechat"
	"github.com/wxnotify/wxnotify/wechat/tokencache"
	"github.com/wxnotify/wxnotify/worker"
)

func runWorker(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("worker", "Deliver queued send_template tasks to WeChat until SIGTERM or SIGINT.", e)
	ov := newOverrides(fs)
	ov.add("redis-url", "REDIS_URL", "Redis URL")
	ov.add("api-base", "WECHAT_API_BASE", "WeChat API base URL")
	ov.add("concurrency", "WORKER_CONCURRENCY", "sends in flight")
	ov.add("queue-prefix", "QUEUE_PREFIX", "queue name prefix")
	ov.add("log-level", "LOG_LEVEL", "log level")
	ov.add("log-format", "LOG_FORMAT", "log format")
	if err := fs.Parse(args); err != nil {
		return err
	}

	cfg, err := loadConfig(ov.getenv(e.getenv), true)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log := newLogger(cfg, e.stderr, e.stderrIsTerminal)

	rdb := cfg.RedisOpt.MakeRedisClient().(redis.UniversalClient)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w; is it running? (REDIS_URL)", redactedRedisURL(cfg), err)
	}

	w, err := worker.New(worker.Config{
		Redis:           rdb,
		Accounts:        buildAccounts(cfg, rdb, log),
		QueuePrefix:     cfg.QueuePrefix,
		KeyPrefix:       cfg.KeyPrefix,
		Concurrency:     cfg.Concurrency,
		ShutdownTimeout: cfg.ShutdownTimeout,
		ProbeLease:      2*cfg.HTTPTimeout + 5*time.Second,
		Backoff:         cfg.Backoff,
		Policy:          cfg.Policy,
		Logger:          log,
	})
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

// buildAccounts wires, for every account, the token fetcher, the token
// cache shared through Redis, and the API client.
func buildAccounts(cfg *config, rdb redis.UniversalClient, log zerolog.Logger) []worker.Account {
	accts := make([]worker.Account, 0, len(cfg.Accounts))
	for _, a := range cfg.Accounts {
		opts := []wechat.Option{
			wechat.WithBaseURL(cfg.APIBase),
			wechat.WithHTTPClient(wechat.NewHTTPClient(cfg.HTTPTimeout)),
		}
		fetcher := wechat.NewTokenFetcher(a.AppID, a.Secret,
			append(opts, wechat.WithTokenEndpoint(cfg.TokenEndpoint))...)
		tokens := tokencache.New(rdb, fetcher, tokencache.Options{
			KeyPrefix: cfg.KeyPrefix + "token:",
			OnEvent:   tokenEventLogger(log),
		})
		accts = append(accts, worker.Account{
			AppID:  a.AppID,
			Sender: wechat.NewClient(tokens, opts...),
			Rate:   cfg.rateOf(a),
		})
	}
	return accts
}

// redactedRedisURL is REDIS_URL with any password replaced, for messages.
func redactedRedisURL(c *config) string {
	u, err := url.Parse(c.RedisURL)
	if err != nil {
		return "(unparsable REDIS_URL)"
	}
	return u.Redacted()
}
