package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wxnotify/wxnotify/internal/testredis"
	"github.com/wxnotify/wxnotify/tasks"
	"github.com/wxnotify/wxnotify/wechat/wechattest"
)

// Secrets the tests hand to the binary. None of them may show up in any
// output, log or error a test sees; every testEnv checks that when its
// test ends. Each starts differently, so that even the first characters
// of one (YAML quotes seven in its type errors) are caught.
const (
	secretEnv       = "Zr4kQe-env-3f9a1c77d2e0"
	secretFile      = "Pw7nXc-file-8b2e44a019f3"
	secretAccounts1 = "Hd2mVb-acct1-51d0c3e7aa"
	secretAccounts2 = "Tg9sLy-acct2-9e62b8d4c1"
	secretWorker    = "Nb5wRf-worker-07f3d9a2b6"
	redisPassword   = "Jc3pUa-redis-7c1e9b5d"
)

// excerptLen is how much of a secret counts as leaked.
const excerptLen = 7

// knownSecrets lists every secret the package's tests use.
var knownSecrets = []string{
	secretEnv, secretFile, secretAccounts1, secretAccounts2, secretWorker, redisPassword,
	demoSecret,
}

// syncBuffer is a bytes.Buffer that several goroutines may write to,
// as the worker's log does.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testEnv is a fake process environment for run: variables from a map,
// stdin from a string, stdout and stderr into buffers. The error text
// of every run is kept too, so the leak check sees it.
type testEnv struct {
	vars   map[string]string
	stdin  string
	stdout syncBuffer
	stderr syncBuffer
	errs   syncBuffer
	// tokens lists access tokens that must not leak either.
	tokens []func() []string
}

// newTestEnv returns an environment with vars and, at the end of t,
// fails t if any known secret or watched token is in its output.
func newTestEnv(t *testing.T, vars map[string]string) *testEnv {
	t.Helper()
	te := &testEnv{vars: vars}
	t.Cleanup(func() { te.checkNoLeaks(t) })
	return te
}

// watchTokens adds every token fake issues to the leak check.
func (te *testEnv) watchTokens(fake *wechattest.Server) {
	te.tokens = append(te.tokens, fake.IssuedTokens)
}

func (te *testEnv) env() *env {
	return &env{
		getenv: func(name string) string { return te.vars[name] },
		stdin:  strings.NewReader(te.stdin),
		stdout: &te.stdout,
		stderr: &te.stderr,
	}
}

// run calls the binary's run with args and keeps the error's text.
func (te *testEnv) run(ctx context.Context, args ...string) error {
	err := run(ctx, args, te.env())
	if err != nil {
		te.errs.Write([]byte(err.Error() + "\n"))
	}
	return err
}

func (te *testEnv) checkNoLeaks(t *testing.T) {
	t.Helper()
	var secrets []string
	for _, s := range knownSecrets {
		secrets = append(secrets, s[:excerptLen])
	}
	for _, issued := range te.tokens {
		secrets = append(secrets, issued()...)
	}
	outputs := map[string]string{
		"stdout": te.stdout.String(),
		"stderr": te.stderr.String(),
		"errors": te.errs.String(),
	}
	for _, leak := range findLeaks(outputs, secrets) {
		t.Errorf("secret leaked: %s", leak)
	}
}

// findLeaks names each output that holds one of secrets. The secret is
// shown only by its first characters, so the report does not leak it.
func findLeaks(outputs map[string]string, secrets []string) []string {
	var leaks []string
	for name, text := range outputs {
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				leaks = append(leaks, name+" holds "+s[:min(4, len(s))]+"…")
			}
		}
	}
	return leaks
}

// redisVars is the environment that points the binary at the test
// Redis with the test's own queue and key prefix, plus extra.
func redisVars(rds *testredis.Env, extra map[string]string) map[string]string {
	vars := map[string]string{
		"REDIS_URL":        testredis.URL(),
		"QUEUE_PREFIX":     rds.Prefix,
		"REDIS_KEY_PREFIX": rds.Prefix + ":",
	}
	for k, v := range extra {
		vars[k] = v
	}
	return vars
}

// waitFor polls cond until it holds, failing t after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newInspector returns an inspector of the test Redis, closed with t.
func newInspector(t *testing.T) *asynq.Inspector {
	t.Helper()
	insp := asynq.NewInspector(testredis.ConnOpt())
	t.Cleanup(func() { insp.Close() })
	return insp
}

// queuedIDs counts the tasks of queue by id, failing t if the queue
// holds tasks that are not pending.
func queuedIDs(t *testing.T, insp *asynq.Inspector, queue string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	info, err := insp.GetQueueInfo(queue)
	if err != nil {
		return ids // the queue was never written to
	}
	pending, err := insp.ListPendingTasks(queue, asynq.PageSize(1000))
	if err != nil {
		t.Fatalf("list pending tasks of %s: %v", queue, err)
	}
	if info.Size != len(pending) {
		t.Fatalf("queue %s holds %d tasks, %d of them pending", queue, info.Size, len(pending))
	}
	for _, ti := range pending {
		ids[ti.ID]++
	}
	return ids
}

// defaultQueue is the queue of default-priority tasks under prefix.
func defaultQueue(prefix string) string { return tasks.QueueName(prefix, tasks.PriorityDefault) }
