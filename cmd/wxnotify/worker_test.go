package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/internal/testredis"
	"github.com/wxnotify/wxnotify/wechat/wechattest"
	"github.com/wxnotify/wxnotify/worker"
)

const workerAppID = "wxw0rker000000001"

// shutdownTimeout is the worker's WORKER_SHUTDOWN_TIMEOUT in the end to
// end test; run must return well before it forces anything.
const shutdownTimeout = 5 * time.Second

func TestWorkerDeliversEnqueuedMessagesAndStopsOnCancel(t *testing.T) {
	t.Parallel()
	rds := testredis.New(t)
	fake := wechattest.NewTestServer(t, wechattest.Config{
		Accounts: map[string]string{workerAppID: secretWorker},
	})
	wk := newTestEnv(t, redisVars(rds, map[string]string{
		"WECHAT_APPID":            workerAppID,
		"WECHAT_SECRET":           secretWorker,
		"WECHAT_API_BASE":         fake.URL(),
		"WECHAT_HTTP_TIMEOUT":     "2s",
		"WORKER_SHUTDOWN_TIMEOUT": shutdownTimeout.String(),
		"LOG_FORMAT":              "json",
		"LOG_LEVEL":               "debug",
	}))
	wk.watchTokens(fake)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- wk.run(ctx, "worker") }()

	openIDs := enqueueForWorker(t, rds, 20)
	waitFor(t, 30*time.Second, "20 deliveries", func() bool { return fake.Stats().Deliveries >= 20 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("worker returned %v after cancel, want nil", err)
		}
	case <-time.After(2 * shutdownTimeout):
		t.Fatal("worker did not return after its context was cancelled")
	}

	if st := fake.Stats(); st.Deliveries != 20 || st.DuplicatesSuppressed != 0 {
		t.Errorf("fake saw %d deliveries, %d duplicates; want 20 and 0",
			st.Deliveries, st.DuplicatesSuppressed)
	}
	if len(fake.IssuedTokens()) == 0 {
		t.Error("the fake issued no token, so the leak check proves nothing")
	}
	checkDeliveredLog(t, wk.stderr.String(), openIDs)
	info, err := newInspector(t).GetQueueInfo(defaultQueue(rds.Prefix))
	if err != nil || info.Completed != 20 {
		t.Errorf("queue info %+v (%v), want 20 completed", info, err)
	}
}

// enqueueForWorker enqueues n messages with `wxnotify enqueue --file`
// and returns each task id's openid.
func enqueueForWorker(t *testing.T, rds *testredis.Env, n int) map[string]string {
	t.Helper()
	openIDs := map[string]string{}
	var lines []string
	for i := range n {
		id, openID := fmt.Sprintf("e2e-invoice-%02d:due-1", i), fmt.Sprintf("oE2E%021d", i)
		openIDs[id] = openID
		lines = append(lines, payloadLine(id, openID))
	}
	path := writeFile(t, t.TempDir(), "e2e.jsonl", strings.Join(lines, "\n")+"\n")

	te := newTestEnv(t, redisVars(rds, map[string]string{"WECHAT_APPID": workerAppID}))
	if err := te.run(context.Background(), "enqueue", "--file", path); err != nil {
		t.Fatalf("enqueue: %v\n%s", err, te.stdout.String())
	}
	want := fmt.Sprintf("enqueued %d, duplicates 0", n)
	if !strings.Contains(te.stdout.String(), want) {
		t.Fatalf("enqueue output lacks %q:\n%s", want, te.stdout.String())
	}
	return openIDs
}

// checkDeliveredLog checks the worker's JSON log has one "delivered"
// line per task, with its fields, and never a full openid.
func checkDeliveredLog(t *testing.T, log string, openIDs map[string]string) {
	t.Helper()
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("log line is not JSON: %q", l)
			continue
		}
		if rec["message"] != "delivered" {
			continue
		}
		id, _ := rec["task_id"].(string)
		seen[id]++
		if rec["appid"] != workerAppID || rec["attempt"] != 1.0 {
			t.Errorf("delivered line has appid %v attempt %v, want %s and 1",
				rec["appid"], rec["attempt"], workerAppID)
		}
		if want := worker.MaskOpenID(openIDs[id]); rec["openid"] != want || want == openIDs[id] {
			t.Errorf("task %q logged openid %v, want the masked %q", id, rec["openid"], want)
		}
	}
	for id, openID := range openIDs {
		if seen[id] != 1 {
			t.Errorf("task %s has %d delivered lines, want 1", id, seen[id])
		}
		if strings.Contains(log, openID) {
			t.Errorf("the log holds the full openid of task %s", id)
		}
	}
	if len(seen) != len(openIDs) {
		t.Errorf("delivered lines name %d tasks, want %d", len(seen), len(openIDs))
	}
}
