package fleet

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/tasks"
	"github.com/wxnotify/wxnotify/wechat"
	"github.com/wxnotify/wxnotify/wechat/wechattest"
)

// pollEvery is how often the wait helpers look again.
const pollEvery = 50 * time.Millisecond

// WaitFor polls cond until it holds, and fails the test with what and the
// harness status if timeout passes first.
func (h *Harness) WaitFor(what string, timeout time.Duration, cond func() bool) {
	h.T.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			h.T.Fatalf("timed out after %s waiting for %s\n%s", timeout, what, h.Status())
		}
		time.Sleep(pollEvery)
	}
}

// WaitCompleted waits until n tasks of the default queue have completed.
func (h *Harness) WaitCompleted(n int, timeout time.Duration) {
	h.T.Helper()
	h.WaitFor(fmt.Sprintf("%d completed tasks", n), timeout, func() bool {
		return h.QueueInfo().Completed >= n
	})
}

// WaitStats waits until cond holds for the fake's counters.
func (h *Harness) WaitStats(what string, timeout time.Duration, cond func(wechattest.Stats) bool) {
	h.T.Helper()
	h.WaitFor(what, timeout, func() bool { return cond(h.Fake.Stats()) })
}

// WaitIdle waits until the default queue has nothing pending or active:
// every task is completed, archived, or waiting for a later time.
func (h *Harness) WaitIdle(timeout time.Duration) {
	h.T.Helper()
	h.WaitFor("no pending or active task", timeout, func() bool {
		q, err := h.Inspector.GetQueueInfo(h.Queue(tasks.PriorityDefault))
		return err == nil && q.Pending == 0 && q.Active == 0
	})
}

// Status describes the default queue and the fake's counters, for
// failure messages.
func (h *Harness) Status() string {
	q := h.QueueInfo()
	st := h.Fake.Stats()
	return fmt.Sprintf("queue: pending %d, active %d, scheduled %d, retry %d, archived %d, "+
		"completed %d\nfake: %d send attempts, %d deliveries, %d duplicates suppressed, "+
		"%d abandoned, %d http 5xx, errcodes %v, %d token calls (errcodes %v)",
		q.Pending, q.Active, q.Scheduled, q.Retry, q.Archived, q.Completed,
		st.SendAttempts, st.Deliveries, st.DuplicatesSuppressed, st.Abandoned, st.HTTP5xx,
		st.Errcodes, st.TokenCalls, st.TokenErrcodes)
}

// CheckDeliveredOnce checks that the fake delivered exactly n messages,
// each (touser, client_msg_id) exactly once.
func (h *Harness) CheckDeliveredOnce(n int) {
	h.T.Helper()
	st := h.Fake.Stats()
	if st.Deliveries != n || len(st.PerKey) != n {
		h.T.Errorf("fake delivered %d messages under %d keys, want %d under %d",
			st.Deliveries, len(st.PerKey), n, n)
	}
	for _, k := range slices.SortedFunc(maps.Keys(st.PerKey), compareKeys) {
		if c := st.PerKey[k]; c != 1 {
			h.T.Errorf("%s/%s delivered %d times", k.ToUser, k.ClientMsgID, c)
		}
	}
}

func compareKeys(a, b wechattest.DeliveryKey) int {
	if c := strings.Compare(a.ToUser, b.ToUser); c != 0 {
		return c
	}
	return strings.Compare(a.ClientMsgID, b.ClientMsgID)
}

// CheckNoSecrets fails the test if any worker log, or any stored task
// error or result of the harness queues, holds the AppSecret, another
// secret given to the workers, or any token the fake has issued. It runs
// by itself when the test ends; a failure names the secret by its
// fingerprint only.
func (h *Harness) CheckNoSecrets() {
	h.T.Helper()
	h.mu.Lock()
	secrets := slices.Concat(h.secrets, h.Fake.IssuedTokens())
	h.mu.Unlock()

	logs := h.Logs()
	stored := h.Tasks()
	for _, s := range slices.Compact(slices.Sorted(slices.Values(secrets))) {
		if s == "" {
			continue
		}
		if strings.Contains(logs, s) {
			h.T.Errorf("a secret (%s) appears in a worker log", wechat.Fingerprint(s))
		}
		for _, info := range stored {
			if strings.Contains(info.LastErr, s) || strings.Contains(string(info.Result), s) {
				h.T.Errorf("task %s stores a secret (%s)", info.ID, wechat.Fingerprint(s))
			}
		}
	}
}
