package worker_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/wxnotify/wxnotify/internal/testredis"
	"github.com/wxnotify/wxnotify/tasks"
	"github.com/wxnotify/wxnotify/wechat"
	"github.com/wxnotify/wxnotify/wechat/tokencache"
	"github.com/wxnotify/wxnotify/wechat/wechattest"
	"github.com/wxnotify/wxnotify/worker"
)

const (
	testAppID  = "wxtest00000000001"
	testSecret = "s3cr3t-THIS-MUST-NEVER-BE-LOGGED"
)

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// stack is one test's wxnotify: a Redis slice, the fake WeChat, a
// producer and an inspector. Workers are started on demand.
type stack struct {
	t     *testing.T
	redis *testredis.Env
	fake  *wechattest.Server
	prod  *tasks.Producer
	insp  *asynq.Inspector
	logs  *syncBuffer
}

func newStack(t *testing.T, fakeCfg wechattest.Config) *stack {
	t.Helper()
	env := testredis.New(t)
	if fakeCfg.Accounts == nil {
		fakeCfg.Accounts = map[string]string{testAppID: testSecret}
	}
	s := &stack{
		t:     t,
		redis: env,
		fake:  wechattest.NewTestServer(t, fakeCfg),
		prod: tasks.NewProducer(testredis.ConnOpt(), tasks.ProducerOptions{
			QueuePrefix: env.Prefix,
		}),
		insp: asynq.NewInspector(testredis.ConnOpt()),
		logs: &syncBuffer{},
	}
	t.Cleanup(func() {
		s.prod.Close()
		s.insp.Close()
		s.assertNoSecretsLogged()
	})
	return s
}

// account wires the real client and the Redis token cache to the fake.
func (s *stack) account() worker.Account {
	opts := []wechat.Option{wechat.WithBaseURL(s.fake.URL())}
	fetcher := wechat.NewTokenFetcher(testAppID, testSecret, opts...)
	tokens := tokencache.New(s.redis.Client, fetcher, tokencache.Options{
		KeyPrefix: s.redis.Prefix + ":token:",
	})
	return worker.Account{AppID: testAppID, Sender: wechat.NewClient(tokens, opts...)}
}

// startWorker runs a worker until the test ends.
func (s *stack) startWorker(mutate func(*worker.Config)) {
	s.t.Helper()
	cfg := worker.Config{
		Redis:       s.redis.Client,
		Accounts:    []worker.Account{s.account()},
		QueuePrefix: s.redis.Prefix,
		KeyPrefix:   s.redis.Prefix + ":",
		Concurrency: 50,
		Backoff:     worker.Backoff{Base: 100 * time.Millisecond, Cap: time.Second},
		Logger:      zerolog.New(s.logs),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	w, err := worker.New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	s.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			s.t.Errorf("worker: %v", err)
		}
	})
}

func (s *stack) queue(p tasks.Priority) string { return tasks.QueueName(s.redis.Prefix, p) }

// waitFor polls cond until it holds or the deadline passes.
func (s *stack) waitFor(what string, timeout time.Duration, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// queueState returns the queue's task counts, zero when it does not exist
// yet.
func (s *stack) queueState(q string) *asynq.QueueInfo {
	info, err := s.insp.GetQueueInfo(q)
	if err != nil {
		return &asynq.QueueInfo{}
	}
	return info
}

// assertNoSecretsLogged checks the worker's whole log and every stored
// task error for the AppSecret and every token the fake issued.
func (s *stack) assertNoSecretsLogged() {
	logs := s.logs.String()
	secrets := append([]string{testSecret}, s.fake.IssuedTokens()...)
	for _, secret := range secrets {
		if secret != "" && strings.Contains(logs, secret) {
			s.t.Errorf("a secret or access token (%s) appears in the worker log",
				wechat.Fingerprint(secret))
		}
	}
	qs, _ := s.insp.Queues()
	for _, q := range qs {
		if !strings.HasPrefix(q, s.redis.Prefix) {
			continue
		}
		for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
			s.insp.ListArchivedTasks, s.insp.ListRetryTasks, s.insp.ListCompletedTasks,
		} {
			infos, _ := list(q, asynq.PageSize(1000))
			for _, info := range infos {
				for _, secret := range secrets {
					if secret != "" && (strings.Contains(info.LastErr, secret) ||
						strings.Contains(string(info.Result), secret)) {
						s.t.Errorf("task %s stores a secret or access token", info.ID)
					}
				}
			}
		}
	}
}
