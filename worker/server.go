package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/wxnotify/wxnotify/tasks"
	"github.com/wxnotify/wxnotify/wechat"
)

// Defaults for Config fields left zero.
const (
	DefaultConcurrency = 50
	// DefaultShutdownTimeout is how long a stopping worker lets running
	// sends finish before asynq requeues them. It must exceed the WeChat
	// HTTP timeout so that no send is cut off after it reached WeChat.
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultSentRecordTTL is how long the worker remembers that a task's
	// message was delivered; a task re-run within it is not sent again.
	DefaultSentRecordTTL = 7 * 24 * time.Hour
	// DefaultKeyPrefix prefixes the worker's own Redis keys.
	DefaultKeyPrefix = "wxnotify:"
)

// Config configures a Worker. Redis and at least one account are
// required; every other zero field takes its default.
type Config struct {
	// Redis is the client the worker shares with asynq. The caller
	// closes it after Run returns.
	Redis redis.UniversalClient
	// Accounts are the WeChat accounts this worker sends for. With one
	// account a task may leave appid empty.
	Accounts []Account
	// QueuePrefix names the queues (tasks.QueueName); default
	// tasks.DefaultQueuePrefix.
	QueuePrefix string
	// KeyPrefix prefixes the worker's own keys (sent records, pacing,
	// stops); default DefaultKeyPrefix.
	KeyPrefix       string
	Concurrency     int
	ShutdownTimeout time.Duration
	Backoff         Backoff
	SentRecordTTL   time.Duration
	// Policy times the waits: account stops, slow-downs, quota, age.
	Policy Policy
	// ProbeLease bounds how long the one probe send after a stop may
	// take before another task may probe; it must exceed the longest
	// send (two HTTP calls: the send and its token replay). Default 30 s.
	ProbeLease time.Duration
	// RateHorizon is the longest a send waits in process for its rate
	// slot; a longer wait parks the task instead. Default 2 s.
	RateHorizon time.Duration
	// Rules validates payloads again before sending; AppIDs is filled
	// from Accounts when empty.
	Rules  tasks.Rules
	Logger zerolog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Worker runs an asynq server that delivers send_template tasks.
type Worker struct {
	cfg     Config
	handler *Handler
	srv     *asynq.Server
}

// New checks cfg and builds a Worker; it does not touch Redis yet.
func New(cfg Config) (*Worker, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	h := newHandler(cfg)
	srv := asynq.NewServerFromRedisClient(cfg.Redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   tasks.Queues(cfg.QueuePrefix),
		StrictPriority:           true,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		IsFailure:                IsFailure,
		RetryDelayFunc:           cfg.Backoff.RetryDelay,
		DelayedTaskCheckInterval: time.Second,
		Logger:                   asynqLogger{cfg.Logger},
		LogLevel:                 asynq.WarnLevel,
		HealthCheckFunc:          healthCheck(cfg.Logger),
	})
	return &Worker{cfg: cfg, handler: h, srv: srv}, nil
}

func (c *Config) setDefaults() error {
	if c.Redis == nil {
		return errors.New("worker: redis client is required")
	}
	if len(c.Accounts) == 0 {
		return errors.New("worker: at least one account is required")
	}
	if c.QueuePrefix == "" {
		c.QueuePrefix = tasks.DefaultQueuePrefix
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.SentRecordTTL <= 0 {
		c.SentRecordTTL = DefaultSentRecordTTL
	}
	c.Policy.setDefaults()
	if c.ProbeLease <= 0 {
		c.ProbeLease = 3 * wechat.DefaultHTTPTimeout
	}
	if c.RateHorizon <= 0 {
		c.RateHorizon = 2 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if len(c.Rules.AppIDs) == 0 {
		for _, a := range c.Accounts {
			c.Rules.AppIDs = append(c.Rules.AppIDs, a.AppID)
		}
	}
	return nil
}

func newHandler(cfg Config) *Handler {
	h := &Handler{
		accounts: make(map[string]Account, len(cfg.Accounts)),
		rules:    cfg.Rules,
		ctl: &control{
			rdb:        cfg.Redis,
			prefix:     cfg.KeyPrefix,
			sentTTL:    cfg.SentRecordTTL,
			probeLease: cfg.ProbeLease,
			horizon:    cfg.RateHorizon,
		},
		policy: cfg.Policy,
		log:    cfg.Logger,
		now:    cfg.Now,
	}
	for _, a := range cfg.Accounts {
		h.accounts[a.AppID] = a
	}
	if len(cfg.Accounts) == 1 {
		h.defaultAppID = cfg.Accounts[0].AppID
	}
	return h
}

// Run processes tasks until ctx is cancelled, then stops fetching, lets
// running sends finish for up to the shutdown timeout, and returns.
func (w *Worker) Run(ctx context.Context) error {
	mux := asynq.NewServeMux()
	mux.Handle(tasks.TypeSendTemplate, w.handler)
	if err := w.srv.Start(mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	w.cfg.Logger.Info().
		Int("concurrency", w.cfg.Concurrency).
		Int("accounts", len(w.cfg.Accounts)).
		Str("queue_prefix", w.cfg.QueuePrefix).
		Msg("worker started")

	<-ctx.Done()
	w.cfg.Logger.Info().Str("shutdown_timeout", w.cfg.ShutdownTimeout.String()).
		Msg("stopping: no new tasks, waiting for running sends")
	w.srv.Shutdown()
	w.cfg.Logger.Info().Msg("worker stopped")
	return nil
}

func healthCheck(log zerolog.Logger) func(error) {
	return func(err error) {
		if err != nil {
			log.Error().Err(err).Msg("redis unreachable: tasks are not being fetched")
		}
	}
}

// asynqLogger routes asynq's own log lines into zerolog.
type asynqLogger struct{ log zerolog.Logger }

func (l asynqLogger) Debug(args ...any) { l.log.Debug().Msg(fmt.Sprint(args...)) }
func (l asynqLogger) Info(args ...any)  { l.log.Info().Msg(fmt.Sprint(args...)) }

// Warn drops asynq's "Retry exhausted" line to debug: the handler has
// already logged why the task was archived.
func (l asynqLogger) Warn(args ...any) {
	msg := fmt.Sprint(args...)
	if strings.HasPrefix(msg, "Retry exhausted") {
		l.log.Debug().Msg(msg)
		return
	}
	l.log.Warn().Msg(msg)
}
func (l asynqLogger) Error(args ...any) { l.log.Error().Msg(fmt.Sprint(args...)) }
func (l asynqLogger) Fatal(args ...any) { l.log.Fatal().Msg(fmt.Sprint(args...)) }
