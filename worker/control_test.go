package worker

import (
	"context"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/internal/testredis"
	"github.com/wxnotify/wxnotify/wechat"
)

func newControl(t *testing.T) *control {
	t.Helper()
	env := testredis.New(t)
	return &control{
		rdb:        env.Client,
		prefix:     env.Prefix + ":",
		sentTTL:    time.Minute,
		probeLease: 5 * time.Second,
		horizon:    2 * time.Second,
	}
}

func TestAdmitReportsASentTask(t *testing.T) {
	c := newControl(t)
	ctx := context.Background()
	if err := c.recordSent(ctx, "wxA", "task-1", 3662956322040938501); err != nil {
		t.Fatal(err)
	}
	a, err := c.admit(ctx, "wxA", "task-1", "TPL", Rate{})
	if err != nil {
		t.Fatal(err)
	}
	if !a.sent || a.sentMsgID != 3662956322040938501 {
		t.Fatalf("admission %+v, want sent with the recorded msgid", a)
	}
	if a, _ := c.admit(ctx, "wxB", "task-1", "TPL", Rate{}); a.sent {
		t.Fatal("a sent record of one account leaked into another")
	}
}

func TestAdmitReservesRateSlotsInOrder(t *testing.T) {
	c := newControl(t)
	ctx := context.Background()
	rate := Rate{PerSecond: 100, Burst: 3} // one slot every 10 ms
	var sleeps []time.Duration
	for i := range 10 {
		a, err := c.admit(ctx, "wxA", "t", "TPL", rate)
		if err != nil {
			t.Fatal(err)
		}
		if a.wait != 0 {
			t.Fatalf("send %d told to come back in %s within the horizon", i, a.wait)
		}
		sleeps = append(sleeps, a.sleep)
	}
	// The burst goes at once; then each send waits one more interval.
	for i, d := range sleeps {
		want := time.Duration(max(0, i-2)) * 10 * time.Millisecond
		if d < want-3*time.Millisecond || d > want+3*time.Millisecond {
			t.Fatalf("send %d sleeps %s, want about %s (all: %v)", i, d, want, sleeps)
		}
	}
}

func TestAdmitParksSendsBeyondTheHorizon(t *testing.T) {
	c := newControl(t)
	c.horizon = 50 * time.Millisecond
	ctx := context.Background()
	rate := Rate{PerSecond: 20, Burst: 1} // 50 ms apart
	parked := 0
	for range 5 {
		a, err := c.admit(ctx, "wxA", "t", "TPL", rate)
		if err != nil {
			t.Fatal(err)
		}
		if a.wait > 0 {
			parked++
		}
	}
	if parked < 3 {
		t.Fatalf("%d of 5 sends parked; slots past a 50 ms horizon must not be reserved", parked)
	}
}

func TestStopAllowsOneProbeAfterItEnds(t *testing.T) {
	c := newControl(t)
	ctx := context.Background()
	d := Decision{Action: StopAccount, Code: wechat.CodeIPNotWhitelisted, Reason: "errcode 40164: ip"}
	until, set, err := c.stop(ctx, "wxA", "", stopAccount, d, 300*time.Millisecond)
	if err != nil || !set {
		t.Fatalf("stop: set=%v err=%v", set, err)
	}
	if _, again, _ := c.stop(ctx, "wxA", "", stopAccount, d, 100*time.Millisecond); again {
		t.Fatal("a shorter stop replaced a longer one")
	}

	a, _ := c.admit(ctx, "wxA", "t1", "TPL", Rate{})
	if a.stopped == nil || a.stopped.Code != wechat.CodeIPNotWhitelisted {
		t.Fatalf("admission during the stop: %+v", a)
	}
	time.Sleep(time.Until(until) + 20*time.Millisecond)

	first, _ := c.admit(ctx, "wxA", "t2", "TPL", Rate{})
	second, _ := c.admit(ctx, "wxA", "t3", "TPL", Rate{})
	if !first.probe || first.stopped != nil {
		t.Fatalf("first admission after the stop ended: %+v, want the probe", first)
	}
	if second.stopped == nil {
		t.Fatalf("second admission while the probe runs: %+v, want it held back", second)
	}

	if resumed, err := c.resume(ctx, "wxA"); err != nil || !resumed {
		t.Fatalf("resume: %v %v", resumed, err)
	}
	if a, _ := c.admit(ctx, "wxA", "t4", "TPL", Rate{}); a.stopped != nil || a.probe {
		t.Fatalf("after resume: %+v, want a plain ok", a)
	}
}

func TestTemplateStopLeavesOtherTemplatesAlone(t *testing.T) {
	c := newControl(t)
	ctx := context.Background()
	d := Decision{Action: StopTemplate, Code: wechat.CodeTemplateBanned, Reason: "banned"}
	if _, _, err := c.stop(ctx, "wxA", "TPL_BAD", stopTemplate, d, time.Minute); err != nil {
		t.Fatal(err)
	}
	if a, _ := c.admit(ctx, "wxA", "t1", "TPL_BAD", Rate{}); a.stopped == nil {
		t.Fatal("banned template was admitted")
	}
	if a, _ := c.admit(ctx, "wxA", "t2", "TPL_OK", Rate{}); a.stopped != nil {
		t.Fatal("another template was stopped with it")
	}
}

func TestQuotaResetIsNextMidnightInShanghai(t *testing.T) {
	t.Parallel()
	q := QuotaReset{}
	now := time.Date(2026, 12, 3, 15, 59, 0, 0, time.UTC) // 23:59 in Shanghai
	want := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)
	if got := q.Next(now); !got.Equal(want) {
		t.Fatalf("Next(%s) = %s, want %s", now, got, want)
	}
	if got := q.Next(want); !got.Equal(want.Add(24 * time.Hour)) {
		t.Fatalf("Next at the reset itself = %s, want the day after", got)
	}
}

func TestQuotaWaitIsBoundedByTheProbeInterval(t *testing.T) {
	t.Parallel()
	p := Policy{QuotaProbeInterval: 10 * time.Minute}
	p.setDefaults()
	now := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC) // 10:00 in Shanghai
	kind, dur, _ := p.stopOf(Decision{Action: QuotaExhausted}, "", now, nil)
	if kind != stopQuota || dur != 10*time.Minute {
		t.Fatalf("quota stop %s for %s, want %s for 10m", kind, dur, stopQuota)
	}
}

func TestResumeClearsAccountAndTemplateStops(t *testing.T) {
	c := newControl(t)
	ctx := context.Background()
	d := Decision{Code: wechat.CodeIPNotWhitelisted, Reason: "errcode 40164: ip"}
	if _, _, err := c.stop(ctx, "wxA", "", stopAccount, d, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.stop(ctx, "wxA", "TPL_X", stopTemplate, d, time.Hour); err != nil {
		t.Fatal(err)
	}

	stops, err := ListStops(ctx, c.rdb, c.prefix, "wxA")
	if err != nil || len(stops) != 2 {
		t.Fatalf("ListStops = %+v, %v; want the account and the template stop", stops, err)
	}
	var sawTemplate bool
	for _, st := range stops {
		sawTemplate = sawTemplate || st.TemplateID == "TPL_X"
		if st.Code != wechat.CodeIPNotWhitelisted || time.Until(st.Until) < 50*time.Minute {
			t.Fatalf("stop %+v lost its errcode or end", st)
		}
	}
	if !sawTemplate {
		t.Fatal("the template stop does not name its template")
	}

	if n, err := Resume(ctx, c.rdb, c.prefix, "wxA"); err != nil || n != 2 {
		t.Fatalf("Resume = %d, %v; want 2 cleared", n, err)
	}
	if a, _ := c.admit(ctx, "wxA", "t", "TPL_X", Rate{}); a.stopped != nil || a.probe {
		t.Fatalf("after Resume: %+v, want a plain ok", a)
	}
}
