package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wxnotify/wxnotify/internal/fleet"
	"github.com/wxnotify/wxnotify/wechat/wechattest"
)

func TestKilledAndStoppedWorkersLoseAndDuplicateNothing(t *testing.T) {
	const (
		n    = 1000
		conc = 20
	)
	h := fleet.New(t, wechattest.Config{Faults: wechattest.Faults{Latency: 50 * time.Millisecond}})
	h.Enqueue(fleet.Messages(n)...)
	f := h.Start(3, map[string]string{
		"WORKER_CONCURRENCY":      "20",
		"WECHAT_HTTP_TIMEOUT":     "2s",
		"WORKER_SHUTDOWN_TIMEOUT": "5s",
	})

	h.WaitStats("a quarter delivered", 60*time.Second, func(st wechattest.Stats) bool {
		return st.Deliveries >= n/4
	})
	f.Kill(0)
	killed := time.Now()
	atKill := h.Fake.Stats().Deliveries

	h.WaitStats("half delivered", 60*time.Second, func(st wechattest.Stats) bool {
		return st.Deliveries >= n/2
	})
	atStop := h.Fake.Stats().Deliveries
	if err := f.Stop(1); err != nil {
		t.Errorf("worker 1 on SIGTERM: %v, want a clean exit", err)
	}
	// An orchestrator restarts what crashed. asynq's recoverer runs at a
	// worker's start and then every minute, and takes tasks whose lease
	// ran out over 30 s before; a worker started now is the one whose
	// first minute ends just after the killed worker's tasks qualify.
	f.Add()

	h.WaitCompleted(n, 150*time.Second)
	recovered := time.Since(killed)

	h.CheckDeliveredOnce(n)
	st := h.Fake.Stats()
	// The killed worker had at most conc sends in flight: each may have
	// been sent again, and none other.
	if st.SendAttempts > n+conc || st.DuplicatesSuppressed > conc {
		t.Errorf("%d send attempts and %d duplicates suppressed for %d messages; want at most "+
			"%d and %d, one per send the killed worker had in flight",
			st.SendAttempts, st.DuplicatesSuppressed, n, n+conc, conc)
	}
	answered := st.Deliveries + st.DuplicatesSuppressed + st.Abandoned
	if answered != st.SendAttempts {
		t.Errorf("%d send attempts but %d delivered, suppressed or abandoned",
			st.SendAttempts, answered)
	}
	if q := h.QueueInfo(); q.Archived != 0 || q.Completed != n {
		t.Errorf("%d archived and %d completed, want 0 and %d", q.Archived, q.Completed, n)
	}

	orphans := 0
	for _, info := range h.Tasks() {
		if info.State == asynq.TaskStateCompleted && info.LastErr == "asynq: task lease expired" {
			orphans++
		}
	}
	if orphans == 0 || orphans > conc {
		t.Errorf("%d tasks recovered after their lease expired, want 1 to %d", orphans, conc)
	}
	t.Logf("worker 0 killed at %d deliveries, worker 1 stopped at %d (%d sends finished "+
		"during its shutdown); %d orphaned tasks recovered, all %d done %s after the kill; "+
		"%d send attempts, %d duplicates suppressed, %d abandoned", atKill, atStop,
		finishedOnStop(f, 1), orphans, n, recovered.Round(time.Millisecond),
		st.SendAttempts, st.DuplicatesSuppressed, st.Abandoned)
}

// finishedOnStop counts the sends worker i completed after it began to
// shut down.
func finishedOnStop(f *fleet.Fleet, i int) int {
	stopping, n := false, 0
	for _, line := range f.LogLines() {
		if line[fleet.ProcKey] != i {
			continue
		}
		msg, _ := line["message"].(string)
		if strings.HasPrefix(msg, "stopping") {
			stopping = true
		}
		if stopping && msg == "delivered" {
			n++
		}
	}
	return n
}
