package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/internal/fleet"
	"github.com/wxnotify/wxnotify/wechat"
	"github.com/wxnotify/wxnotify/wechat/wechattest"
)

func TestFaultyWeChatStillGetsEveryMessageExactlyOnce(t *testing.T) {
	h := fleet.New(t, wechattest.Config{Faults: wechattest.Faults{
		ErrcodeRate: map[int]float64{wechat.CodeSystemBusy: 0.2},
		HTTP5xxRate: 0.05,
		SlowRate:    0.02,
		SlowDelay:   1500 * time.Millisecond, // past the 1 s client timeout
		SlowMode:    wechattest.SlowAfter,
	}})
	const n = 1000
	h.Enqueue(fleet.Messages(n)...)

	start := time.Now()
	f := h.Start(3, map[string]string{
		"WECHAT_HTTP_TIMEOUT":     "1s",
		"WORKER_SHUTDOWN_TIMEOUT": "5s",
	})
	h.WaitCompleted(n, 90*time.Second)
	took := time.Since(start)

	h.CheckDeliveredOnce(n)
	if q := h.QueueInfo(); q.Archived != 0 {
		t.Errorf("%d tasks archived", q.Archived)
	}
	timeouts := 0
	for _, line := range f.LogLines() {
		reason, _ := line["reason"].(string)
		if strings.HasPrefix(reason, "timeout waiting for wechat") {
			timeouts++
		}
	}
	st := h.Fake.Stats()
	if st.DuplicatesSuppressed > timeouts {
		t.Errorf("%d resends caught by client_msg_id but only %d sends timed out: "+
			"something resent a message that had an answer", st.DuplicatesSuppressed, timeouts)
	}
	t.Logf("%d messages in %s: %d send attempts, %d -1, %d http 5xx, %d timeouts, "+
		"%d duplicates suppressed", n, took.Round(time.Millisecond), st.SendAttempts,
		st.Errcodes[wechat.CodeSystemBusy], st.HTTP5xx, timeouts, st.DuplicatesSuppressed)
}

func TestDailyQuotaPausesTheFleetUntilEachReset(t *testing.T) {
	const (
		n, quota    = 1000, 300
		procs, conc = 3, 50
		interval    = 2 * time.Second
	)
	// Tokens outlive the days the test skips, so each reset tests the
	// quota path alone and not also a token expiring under the fleet.
	h := fleet.New(t, wechattest.Config{
		TokenTTL: 30 * 24 * time.Hour,
		Faults:   wechattest.Faults{DailyQuota: quota},
	})
	h.Enqueue(fleet.Messages(n)...)
	start := time.Now()
	f := h.Start(procs, map[string]string{"WECHAT_QUOTA_PROBE_INTERVAL": interval.String()})

	refusals := waitQuotaUsedUp(h, quota)
	waited := time.Since(start)
	// Every send in flight when the first 45009 came back, then one
	// probe per interval, and one more at each end.
	bound := procs*conc + int(waited/interval) + 2
	if refusals > bound {
		t.Errorf("%d sends refused with 45009 in %s, want at most %d",
			refusals, waited.Round(time.Millisecond), bound)
	}
	if q := h.QueueInfo(); q.Archived != 0 || q.Completed != quota {
		t.Errorf("%d archived, %d completed before the reset; want 0 and %d",
			q.Archived, q.Completed, quota)
	}
	checkNoRetries(t, h, f)

	// The fake's quota is per day, so the other 700 take three resets.
	resets := 0
	for delivered := quota; delivered < n; delivered = min(n, delivered+quota) {
		h.Fake.AdvanceDay()
		resets++
		reset, next := time.Now(), min(n, delivered+quota)
		h.WaitStats(fmt.Sprintf("%d delivered after reset %d", next, resets), 60*time.Second,
			func(st wechattest.Stats) bool { return st.Deliveries >= next })
		t.Logf("reset %d: %d more delivered %s after it", resets, next-delivered,
			time.Since(reset).Round(time.Millisecond))
		if next < n {
			waitQuotaUsedUp(h, next)
		}
	}
	h.WaitCompleted(n, 60*time.Second)

	h.CheckDeliveredOnce(n)
	checkNoRetries(t, h, f)
	st := h.Fake.Stats()
	// A reset moves the fake's clock past the token's expiry; the fleet
	// must get by with one refresh each time.
	if st.TokenCalls > 1+resets {
		t.Errorf("%d token calls over %d resets, want at most %d", st.TokenCalls, resets, 1+resets)
	}
	t.Logf("quota %d: %d sends refused with 45009 over the first %s (bound %d); %d resets, "+
		"%d in all, %d token calls", quota, refusals, waited.Round(time.Millisecond), bound,
		resets, st.Errcodes[wechat.CodeDailyQuota], st.TokenCalls)
}

// waitQuotaUsedUp waits until the fake has delivered want messages and
// refused at least one, the fleet has parked every other task, and two
// more probes found the quota still used up. It returns the 45009
// answers so far.
func waitQuotaUsedUp(h *fleet.Harness, want int) int {
	h.T.Helper()
	h.WaitStats(fmt.Sprintf("%d delivered and the quota used up", want), 60*time.Second,
		func(st wechattest.Stats) bool {
			return st.Deliveries == want && st.Errcodes[wechat.CodeDailyQuota] > 0
		})
	h.WaitIdle(30 * time.Second)
	probed := h.Fake.Stats().Errcodes[wechat.CodeDailyQuota]
	h.WaitStats("two more probes", 20*time.Second, func(st wechattest.Stats) bool {
		return st.Errcodes[wechat.CodeDailyQuota] >= probed+2
	})

	st := h.Fake.Stats()
	if st.Deliveries != want {
		h.T.Errorf("%d delivered while the quota was used up, want %d", st.Deliveries, want)
	}
	return st.Errcodes[wechat.CodeDailyQuota]
}

func TestSharedRateLimitHoldsAcrossThreeWorkers(t *testing.T) {
	const (
		n            = 600
		limit, burst = 50, 5
	)
	h := fleet.New(t, wechattest.Config{})
	h.Enqueue(fleet.Messages(n)...)
	f := h.Start(3, map[string]string{"WECHAT_RATE_LIMIT": "50", "WECHAT_RATE_BURST": "5"})
	h.WaitCompleted(n, 60*time.Second)

	h.CheckDeliveredOnce(n)
	ds := h.Fake.Deliveries()
	worst := wechattest.MaxInWindow(ds, time.Second)
	span := ds[len(ds)-1].At.Sub(ds[0].At)
	mean := rate(len(ds)-1, span)
	if worst > limit+burst {
		t.Errorf("worst one-second window held %d deliveries, want at most %d", worst, limit+burst)
	}
	if mean < 0.9*limit {
		t.Errorf("mean rate %.1f/s over %s, want at least %.0f/s", mean, span, 0.9*limit)
	}
	checkNoRetries(t, h, f)
	t.Logf("rate %d/s burst %d: worst 1 s window %d, mean %.1f/s over %s", limit, burst,
		worst, mean, span.Round(time.Millisecond))
}

func TestUnknownTemplateIsArchivedAfterOneAttempt(t *testing.T) {
	h := fleet.New(t, wechattest.Config{Templates: map[string]bool{fleet.Template: true}})
	good, bad := fleet.Message(0), fleet.Message(1)
	bad.TemplateID = "TPL_NOT_OF_THIS_ACCOUNT"
	infos := h.Enqueue(good, bad)
	h.Start(2, nil)

	h.WaitFor("one delivered and one archived", 30*time.Second, func() bool {
		q := h.QueueInfo()
		return q.Completed == 1 && q.Archived == 1
	})
	got, err := h.Inspector.GetTaskInfo(infos[1].Queue, infos[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	want := "errcode 40037: template_id is not one of this account's templates"
	if got.Retried != 0 || got.LastErr != want {
		t.Errorf("archived after %d retries with %q, want after none with %q",
			got.Retried, got.LastErr, want)
	}
	if st := h.Fake.Stats(); st.SendAttempts != 2 {
		t.Errorf("%d send attempts for two messages, want 2", st.SendAttempts)
	}
}

func TestIPNotOnWhitelistStopsTheAccountWithOneLogLine(t *testing.T) {
	h := fleet.New(t, wechattest.Config{Faults: wechattest.Faults{
		TokenErrcode: wechat.CodeIPNotWhitelisted,
	}})
	const n = 100
	h.Enqueue(fleet.Messages(n)...)
	f := h.Start(3, nil)

	h.WaitFor("the refusal logged", 30*time.Second, func() bool {
		return len(errorLines(f)) > 0
	})
	h.WaitIdle(30 * time.Second)

	errs := errorLines(f)
	if len(errs) != 1 {
		t.Fatalf("%d error lines across the fleet, want exactly one:%s", len(errs), describe(errs))
	}
	line := errs[0]
	detail, _ := line["error"].(string)
	if line["appid"] != fleet.AppID || errcodeOf(line) != wechat.CodeIPNotWhitelisted ||
		!strings.Contains(detail, "127.0.0.1") {
		t.Errorf("error line %v does not name appid %s, errcode %d and the IP 127.0.0.1",
			line, fleet.AppID, wechat.CodeIPNotWhitelisted)
	}
	st := h.Fake.Stats()
	if st.SendAttempts != 0 || st.TokenCalls != 1 {
		t.Errorf("%d send attempts and %d token calls, want none and one",
			st.SendAttempts, st.TokenCalls)
	}
	checkKept(t, h, n)
}
