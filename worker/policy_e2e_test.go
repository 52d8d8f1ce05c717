package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wxnotify/wxnotify/tasks"
	"github.com/wxnotify/wxnotify/wechat"
	"github.com/wxnotify/wxnotify/wechat/wechattest"
	"github.com/wxnotify/wxnotify/worker"
)

func (s *stack) enqueueN(n int, mutate func(int, *tasks.Payload)) []*asynq.TaskInfo {
	s.t.Helper()
	infos := make([]*asynq.TaskInfo, 0, n)
	for i := range n {
		p := reminder(i)
		if mutate != nil {
			mutate(i, p)
		}
		info, err := s.prod.Enqueue(context.Background(), p)
		if err != nil {
			s.t.Fatalf("enqueue %d: %v", i, err)
		}
		infos = append(infos, info)
	}
	return infos
}

func (s *stack) taskInfos(infos []*asynq.TaskInfo) []*asynq.TaskInfo {
	out := make([]*asynq.TaskInfo, 0, len(infos))
	for _, in := range infos {
		got, err := s.insp.GetTaskInfo(in.Queue, in.ID)
		if err != nil {
			s.t.Fatalf("task %s: %v", in.ID, err)
		}
		out = append(out, got)
	}
	return out
}

func TestDailyQuotaParksTasksWithoutRetriesAndResumesAfterReset(t *testing.T) {
	s := newStack(t, wechattest.Config{Faults: wechattest.Faults{DailyQuota: 10}})
	infos := s.enqueueN(40, nil)
	s.startWorker(func(c *worker.Config) {
		c.Concurrency = 5
		c.Policy.QuotaProbeInterval = 500 * time.Millisecond
	})

	s.waitFor("10 deliveries and the rest parked", 30*time.Second, func() bool {
		st := s.fake.Stats()
		return st.Deliveries == 10 && s.queueState(s.queue(tasks.PriorityDefault)).Retry == 30
	})
	time.Sleep(1500 * time.Millisecond) // a few probe intervals pass
	st := s.fake.Stats()
	if over := st.Errcodes[wechat.CodeDailyQuota]; over > 5+3+5 {
		t.Errorf("%d sends answered 45009: more than in-flight sends plus a probe per interval", over)
	}
	for _, info := range s.taskInfos(infos) {
		if info.Retried != 0 || info.State == asynq.TaskStateArchived {
			t.Fatalf("task %s: state %v, retried %d — quota waits must not use retries",
				info.ID, info.State, info.Retried)
		}
	}

	// Each new day at the fake brings 10 more; the parked tasks find out
	// through one probe per interval.
	for day := 2; day <= 4; day++ {
		s.fake.AdvanceDay()
		s.waitFor(fmt.Sprintf("%d delivered on day %d", day*10, day), 30*time.Second, func() bool {
			return s.fake.Stats().Deliveries == day*10
		})
	}
	s.waitFor("all 40 completed", 10*time.Second, func() bool {
		return s.queueState(s.queue(tasks.PriorityDefault)).Completed == 40
	})
	if !strings.Contains(s.logs.String(), "daily quota used up") {
		t.Error("the quota stop was not logged")
	}
	if !strings.Contains(s.logs.String(), "account resumed") {
		t.Error("the resume was not logged")
	}
}

func TestMinuteQuotaSlowsTheAccountWithoutRetries(t *testing.T) {
	s := newStack(t, wechattest.Config{Faults: wechattest.Faults{
		ErrcodeFor: []wechattest.ErrcodeRule{{Errcode: wechat.CodeMinuteQuota, Times: 1}},
	}})
	infos := s.enqueueN(5, nil)
	s.startWorker(func(c *worker.Config) {
		c.Concurrency = 1
		c.Policy.SlowDown = 500 * time.Millisecond
	})
	s.waitFor("all delivered after the slow-down", 30*time.Second, func() bool {
		return s.queueState(s.queue(tasks.PriorityDefault)).Completed == 5
	})
	for _, info := range s.taskInfos(infos) {
		if info.Retried != 0 {
			t.Fatalf("task %s retried %d times for a 45011", info.ID, info.Retried)
		}
	}
	if !strings.Contains(s.logs.String(), "account slowed down") {
		t.Error("the slow-down was not logged")
	}
}

func TestOpenIDTooFrequentDelaysOnlyThatMessage(t *testing.T) {
	busy := reminder(0).ToUser
	s := newStack(t, wechattest.Config{Faults: wechattest.Faults{
		ErrcodeFor: []wechattest.ErrcodeRule{
			{Errcode: wechat.CodeOpenIDTooFrequent, OpenIDs: []string{busy}, Times: 1},
		},
	}})
	infos := s.enqueueN(10, nil)
	s.startWorker(func(c *worker.Config) { c.Policy.RecipientDelay = 2 * time.Second })

	q := s.queue(tasks.PriorityDefault)
	s.waitFor("the other 9 delivered while one waits", 20*time.Second, func() bool {
		return s.queueState(q).Completed == 9
	})
	got, _ := s.insp.GetTaskInfo(q, infos[0].ID)
	if got.State == asynq.TaskStateCompleted || got.Retried != 0 {
		t.Fatalf("the 43117 message: state %v, retried %d; want it waiting, no retry used",
			got.State, got.Retried)
	}
	s.waitFor("the delayed message delivered", 20*time.Second, func() bool {
		return s.queueState(q).Completed == 10
	})
}

func TestAccountStopKeepsTasksAndProbesOnce(t *testing.T) {
	s := newStack(t, wechattest.Config{Faults: wechattest.Faults{
		ErrcodeFor: []wechattest.ErrcodeRule{{Errcode: wechat.CodeAPIUnauthorized, Times: 2}},
	}})
	s.enqueueN(20, nil)
	s.startWorker(func(c *worker.Config) {
		c.Concurrency = 1
		c.Policy.AccountStop = 700 * time.Millisecond
	})
	q := s.queue(tasks.PriorityDefault)
	s.waitFor("all delivered once the account works again", 30*time.Second, func() bool {
		return s.queueState(q).Completed == 20
	})
	if a := s.queueState(q).Archived; a != 0 {
		t.Fatalf("%d tasks archived for an account error", a)
	}
	if st := s.fake.Stats(); st.Errcodes[wechat.CodeAPIUnauthorized] != 2 {
		t.Fatalf("48001 answered %d times, want 2 (first send, then one probe)",
			st.Errcodes[wechat.CodeAPIUnauthorized])
	}
	if n := strings.Count(s.logs.String(), "account stopped"); n != 2 {
		t.Errorf("account stop logged %d times, want once per stop (2)", n)
	}
}

func TestBannedTemplateStopsOnlyThatTemplate(t *testing.T) {
	s := newStack(t, wechattest.Config{Faults: wechattest.Faults{
		ErrcodeFor: []wechattest.ErrcodeRule{
			{Errcode: wechat.CodeTemplateBanned, TemplateIDs: []string{"TPL_BANNED"}},
		},
	}})
	s.enqueueN(6, func(i int, p *tasks.Payload) {
		if i%2 == 0 {
			p.TemplateID = "TPL_BANNED"
		}
	})
	s.startWorker(func(c *worker.Config) {
		c.Concurrency = 1 // so the first banned answer stops the rest
		c.Policy.TemplateStop = time.Hour
	})
	q := s.queue(tasks.PriorityDefault)
	s.waitFor("the 3 other-template messages delivered", 20*time.Second, func() bool {
		return s.queueState(q).Completed == 3
	})
	s.waitFor("the banned ones parked", 20*time.Second, func() bool {
		return s.queueState(q).Retry == 3
	})
	if st := s.fake.Stats(); st.Errcodes[wechat.CodeTemplateBanned] != 1 {
		t.Fatalf("banned template tried %d times, want 1", st.Errcodes[wechat.CodeTemplateBanned])
	}
}

func TestMessagesOlderThanMaxAgeAreArchived(t *testing.T) {
	s := newStack(t, wechattest.Config{})
	infos := s.enqueueN(1, func(_ int, p *tasks.Payload) {
		p.EnqueuedAt = time.Now().Add(-100 * time.Hour)
	})
	s.startWorker(nil)
	q := s.queue(tasks.PriorityDefault)
	s.waitFor("the old message archived", 20*time.Second, func() bool {
		return s.queueState(q).Archived == 1
	})
	got, _ := s.insp.GetTaskInfo(q, infos[0].ID)
	if !strings.Contains(got.LastErr, "maximum age") {
		t.Fatalf("archive reason %q does not explain the age", got.LastErr)
	}
	if s.fake.Stats().SendAttempts != 0 {
		t.Fatal("an expired message was sent")
	}
}

func TestRerunOfSentTaskCompletesWithoutSending(t *testing.T) {
	s := newStack(t, wechattest.Config{})
	infos := s.enqueueN(1, nil)
	key := fmt.Sprintf("%s:{%s}:sent:%s", s.redis.Prefix, testAppID, infos[0].ID)
	if err := s.redis.Client.Set(context.Background(), key, "42", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	s.startWorker(nil)
	q := s.queue(tasks.PriorityDefault)
	s.waitFor("the task completed", 20*time.Second, func() bool {
		return s.queueState(q).Completed == 1
	})
	got, _ := s.insp.GetTaskInfo(q, infos[0].ID)
	var res worker.Result
	if err := json.Unmarshal(got.Result, &res); err != nil || res.MsgID != 42 || !res.Replayed {
		t.Fatalf("result %s (%v), want msgid 42 replayed from the sent record", got.Result, err)
	}
	if s.fake.Stats().SendAttempts != 0 {
		t.Fatal("a task whose message was already sent was sent again")
	}
}

func TestCriticalMessagesGoBeforeALowBacklog(t *testing.T) {
	s := newStack(t, wechattest.Config{})
	s.enqueueN(100, func(i int, p *tasks.Payload) { p.Priority = tasks.PriorityLow })
	critical := s.enqueueN(5, func(i int, p *tasks.Payload) {
		p.ID = fmt.Sprintf("critical-%d", i)
		p.ToUser = fmt.Sprintf("oCRIT%022d", i)
		p.Priority = tasks.PriorityCritical
	})
	s.startWorker(func(c *worker.Config) { c.Concurrency = 1 })
	s.waitFor("criticals delivered", 20*time.Second, func() bool {
		return s.queueState(critical[0].Queue).Completed == 5
	})
	first := s.fake.Deliveries()
	crit := 0
	for _, d := range first[:min(len(first), 6)] {
		if strings.HasPrefix(d.ToUser, "oCRIT") {
			crit++
		}
	}
	if crit < 5 {
		t.Fatalf("only %d of the first 6 deliveries were critical; the low backlog went first", crit)
	}
}
