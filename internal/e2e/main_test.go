// Package e2e holds the fleet-level acceptance tests: several real
// `wxnotify worker` processes against the test Redis and the fake WeChat,
// one test per "done when" of the token-cache and delivery-policy issues.
// The tests run one after another, because they share two CPU cores and
// several of them measure rates.
package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wxnotify/wxnotify/internal/fleet"
)

func TestMain(m *testing.M) {
	code := m.Run()
	fleet.Cleanup()
	os.Exit(code)
}

// errorLines returns the log lines of level error across the fleet.
func errorLines(f *fleet.Fleet) []map[string]any {
	var out []map[string]any
	for _, line := range f.LogLines() {
		if line["level"] == "error" {
			out = append(out, line)
		}
	}
	return out
}

// describe prints log lines for a failure message.
func describe(lines []map[string]any) string {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "\n  %v", l)
	}
	return b.String()
}

// errcodeOf reads a log line's errcode field; JSON numbers decode as
// float64.
func errcodeOf(line map[string]any) int {
	f, _ := line["errcode"].(float64)
	return int(f)
}

// checkKept checks that every task is still queued for later: in the
// retry or scheduled state, never retried as a failure, not archived.
func checkKept(t *testing.T, h *fleet.Harness, n int) {
	t.Helper()
	infos := h.Tasks()
	if len(infos) != n {
		t.Errorf("%d tasks in the queues, want %d", len(infos), n)
	}
	for _, info := range infos {
		kept := info.State == asynq.TaskStateRetry || info.State == asynq.TaskStateScheduled
		if !kept || info.Retried != 0 {
			t.Errorf("task %s is %v after %d retries (last error %q); want it waiting, "+
				"with no retry used", info.ID, info.State, info.Retried, info.LastErr)
		}
	}
}

// checkNoRetries checks that no task used a retry, and shows the log
// lines of any that did.
func checkNoRetries(t *testing.T, h *fleet.Harness, f *fleet.Fleet) {
	t.Helper()
	for _, info := range h.Tasks() {
		if info.Retried != 0 {
			t.Errorf("task %s was retried %d times (last error %q); its log:%s",
				info.ID, info.Retried, info.LastErr, describe(taskLines(f, info.ID)))
		}
	}
}

// taskLines returns the log lines about one task.
func taskLines(f *fleet.Fleet, id string) []map[string]any {
	var out []map[string]any
	for _, line := range f.LogLines() {
		if line["task_id"] == id {
			out = append(out, line)
		}
	}
	return out
}

// rate is deliveries per second over d.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
