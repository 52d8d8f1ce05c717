package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/internal/fleet"
	"github.com/wxnotify/wxnotify/wechat"
	"github.com/wxnotify/wxnotify/wechat/wechattest"
)

// endpoints are the two token endpoints a worker can use.
var endpoints = []string{"stable_token", "token"}

func TestThreeWorkersShareOneTokenFor3000Messages(t *testing.T) {
	for _, ep := range endpoints {
		t.Run(ep, func(t *testing.T) {
			h := fleet.New(t, wechattest.Config{})
			const n = 3000
			h.Enqueue(fleet.Messages(n)...)

			start := time.Now()
			h.Start(3, map[string]string{"WORKER_CONCURRENCY": "50", "WECHAT_TOKEN_ENDPOINT": ep})
			h.WaitCompleted(n, 90*time.Second)
			took := time.Since(start)

			st := h.Fake.Stats()
			calls := map[string]int{
				"stable_token": st.StableTokenCalls,
				"token":        st.ClassicTokenCalls,
			}
			if st.TokenCalls != 1 || calls[ep] != 1 || st.TokensIssued != 1 {
				t.Errorf("fake saw %d token calls (%d to %s) issuing %d tokens, want exactly one",
					st.TokenCalls, calls[ep], ep, st.TokensIssued)
			}
			h.CheckDeliveredOnce(n)
			if st.SendAttempts != n {
				t.Errorf("%d send attempts for %d messages, want one each", st.SendAttempts, n)
			}
			t.Logf("%s: %d messages by 3 workers in %s (%.0f/s), %d token call(s)",
				ep, n, took.Round(time.Millisecond), rate(n, took), st.TokenCalls)
		})
	}
}

func TestWorkersFetchOneTokenPerRefreshPeriodAsTokensExpire(t *testing.T) {
	const (
		ttl     = 6 * time.Second
		latency = 300 * time.Millisecond
		n       = 2700 // 45 sends in flight at 300 ms each: about 18 s, three lifetimes
	)
	// The cache refreshes a token when a quarter of its lifetime is left
	// (5 minutes of WeChat's 7200 s), so one fetch per 3/4 lifetime is
	// the design's steady state.
	period := ttl * 3 / 4

	for _, ep := range endpoints {
		t.Run(ep, func(t *testing.T) {
			// A superseded classic token works 1 s more, not WeChat's 5
			// minutes: a worker still sending with it after that is a
			// worker the fleet left behind.
			h := fleet.New(t, wechattest.Config{
				TokenTTL:       ttl,
				ClassicOverlap: time.Second,
				Faults:         wechattest.Faults{Latency: latency},
			})
			h.Enqueue(fleet.Messages(n)...)

			start := time.Now()
			h.Start(3, map[string]string{"WORKER_CONCURRENCY": "15", "WECHAT_TOKEN_ENDPOINT": ep})
			h.WaitCompleted(n, 90*time.Second)
			took := time.Since(start)

			st := h.Fake.Stats()
			most := int(took/period) + 1
			if st.TokensIssued > most || st.TokenCalls > most {
				t.Errorf("%d token calls issued %d tokens in %s; want at most %d "+
					"(one per %s refresh period, plus the first)",
					st.TokenCalls, st.TokensIssued, took.Round(time.Millisecond), most, period)
			}
			if st.TokensIssued < int(took/ttl) {
				t.Errorf("only %d tokens issued in %s with a %s lifetime: the run outlived them",
					st.TokensIssued, took.Round(time.Millisecond), ttl)
			}
			rejected := st.Errcodes[wechat.CodeInvalidCredential] +
				st.Errcodes[wechat.CodeTokenExpired]
			if rejected != 0 {
				t.Errorf("fake refused %d sends for their token (errcodes %v): the fleet used "+
					"a token it had itself replaced or let expire", rejected, st.Errcodes)
			}
			h.CheckDeliveredOnce(n)
			t.Logf("%s: %d messages in %s = %.1f lifetimes of %s; %d token calls, "+
				"%d issued (bound %d); errcodes %v", ep, n, took.Round(time.Millisecond),
				took.Seconds()/ttl.Seconds(), ttl, st.TokenCalls, st.TokensIssued, most,
				st.Errcodes)
		})
	}
}

func TestEveryMessageIsDeliveredOnceThroughFiveTokenRotations(t *testing.T) {
	h := fleet.New(t, wechattest.Config{Faults: wechattest.Faults{Latency: 50 * time.Millisecond}})
	const (
		n         = 3000
		rotations = 5
	)
	h.Enqueue(fleet.Messages(n)...)
	h.Start(3, map[string]string{"WORKER_CONCURRENCY": "50"})

	// Rotate at evenly spaced points of the run, while sends are in
	// flight with the token being revoked.
	for r := 1; r <= rotations; r++ {
		at := r * n / (rotations + 1)
		h.WaitStats(fmt.Sprintf("%d deliveries before rotation %d", at, r), 60*time.Second,
			func(st wechattest.Stats) bool { return st.Deliveries >= at })
		h.Fake.RotateToken(fleet.AppID)
	}
	h.WaitCompleted(n, 90*time.Second)

	st := h.Fake.Stats()
	if st.TokenCalls != 1+rotations {
		t.Errorf("fake saw %d token calls for %d rotations, want %d: one refresh per rotation",
			st.TokenCalls, rotations, 1+rotations)
	}
	h.CheckDeliveredOnce(n)
	if q := h.QueueInfo(); q.Archived != 0 {
		t.Errorf("%d tasks archived", q.Archived)
	}
	t.Logf("%d rotations: %d token calls, %d sends refused with 40001, %d send attempts, "+
		"%d duplicates suppressed", rotations, st.TokenCalls,
		st.Errcodes[wechat.CodeInvalidCredential], st.SendAttempts, st.DuplicatesSuppressed)
}

func TestWrongSecretIsReportedOnceAndKeepsEveryTask(t *testing.T) {
	h := fleet.New(t, wechattest.Config{})
	const n = 300
	h.Enqueue(fleet.Messages(n)...)
	f := h.Start(3, map[string]string{
		"WORKER_CONCURRENCY": "50",
		"WECHAT_SECRET":      "fleet-WRONG-secret-never-logged-02",
	})

	h.WaitFor("the token refusal logged", 30*time.Second, func() bool {
		return len(errorLines(f)) > 0
	})
	h.WaitIdle(30 * time.Second)

	errs := errorLines(f)
	if len(errs) != 1 {
		t.Fatalf("%d error lines across the fleet, want exactly one:%s", len(errs), describe(errs))
	}
	if errs[0]["appid"] != fleet.AppID || errcodeOf(errs[0]) != wechat.CodeInvalidSecret {
		t.Errorf("error line %v does not name appid %s and errcode %d",
			errs[0], fleet.AppID, wechat.CodeInvalidSecret)
	}
	st := h.Fake.Stats()
	if st.TokenCalls != 1 || st.TokenErrcodes[wechat.CodeInvalidSecret] != 1 {
		t.Errorf("fake saw %d token calls (errcodes %v), want one refused with %d",
			st.TokenCalls, st.TokenErrcodes, wechat.CodeInvalidSecret)
	}
	if st.SendAttempts != 0 {
		t.Errorf("%d send attempts without a token", st.SendAttempts)
	}
	checkKept(t, h, n)
}
