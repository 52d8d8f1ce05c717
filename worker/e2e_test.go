package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wxnotify/wxnotify/internal/testredis"
	"github.com/wxnotify/wxnotify/tasks"
	"github.com/wxnotify/wxnotify/wechat/wechattest"
	"github.com/wxnotify/wxnotify/worker"
)

func reminder(i int) *tasks.Payload {
	return &tasks.Payload{
		ID:         fmt.Sprintf("invoice-%d:due-1", 8800+i),
		ToUser:     fmt.Sprintf("oTEST%022d", i),
		TemplateID: "TPL_PAYMENT_DUE",
		URL:        fmt.Sprintf("https://pay.example.com/i/%d?a=1&b=2", 8800+i),
		Data: map[string]tasks.Value{
			"thing1":  {Value: "物业费 12月"},
			"amount2": {Value: "¥1,280.00"},
		},
	}
}

func TestWorkerDeliversEveryMessageOnceWithMsgIDAsResult(t *testing.T) {
	s := newStack(t, wechattest.Config{})
	ctx := context.Background()

	const n = 200
	ids := make([]string, n)
	for i := range n {
		info, err := s.prod.Enqueue(ctx, reminder(i))
		if err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
		ids[i] = info.ID
	}
	s.startWorker(nil)

	q := s.queue(tasks.PriorityDefault)
	s.waitFor("200 completed tasks", 60*time.Second, func() bool {
		return s.queueState(q).Completed == n
	})

	st := s.fake.Stats()
	if st.Deliveries != n {
		t.Fatalf("fake saw %d deliveries, want %d", st.Deliveries, n)
	}
	for key, count := range st.PerKey {
		if count != 1 {
			t.Errorf("%s/%s delivered %d times", key.ToUser, key.ClientMsgID, count)
		}
	}
	msgIDs := map[int64]bool{}
	for _, d := range s.fake.Deliveries() {
		msgIDs[d.MsgID] = true
	}
	for _, id := range ids {
		info, err := s.insp.GetTaskInfo(q, id)
		if err != nil {
			t.Fatalf("task %s: %v", id, err)
		}
		var res worker.Result
		if err := json.Unmarshal(info.Result, &res); err != nil {
			t.Fatalf("task %s result %q: %v", id, info.Result, err)
		}
		if info.State != asynq.TaskStateCompleted || !msgIDs[res.MsgID] {
			t.Fatalf("task %s: state %v, msgid %d not among the fake's deliveries",
				id, info.State, res.MsgID)
		}
	}
}

func TestWorkerArchivesInvalidPayloadWithoutRetry(t *testing.T) {
	s := newStack(t, wechattest.Config{})
	client := asynq.NewClient(testredis.ConnOpt())
	defer client.Close()

	// Written by a producer that skipped validation: touser is missing.
	raw := `{"template_id":"TPL","data":{"thing1":{"value":"房租"}}}`
	info, err := client.Enqueue(asynq.NewTask(tasks.TypeSendTemplate, []byte(raw)),
		asynq.Queue(s.queue(tasks.PriorityDefault)), asynq.MaxRetry(5))
	if err != nil {
		t.Fatal(err)
	}
	s.startWorker(nil)

	s.waitFor("the invalid task archived", 30*time.Second, func() bool {
		got, err := s.insp.GetTaskInfo(info.Queue, info.ID)
		return err == nil && got.State == asynq.TaskStateArchived
	})
	got, _ := s.insp.GetTaskInfo(info.Queue, info.ID)
	if got.Retried != 0 {
		t.Errorf("invalid payload was retried %d times", got.Retried)
	}
	if !strings.Contains(got.LastErr, "touser") {
		t.Errorf("archive reason %q does not name the field touser", got.LastErr)
	}
	if st := s.fake.Stats(); st.SendAttempts != 0 {
		t.Errorf("an invalid payload reached WeChat (%d attempts)", st.SendAttempts)
	}
}

func TestWorkerArchivesUnfollowedRecipientAfterOneAttempt(t *testing.T) {
	p := reminder(1)
	s := newStack(t, wechattest.Config{Unfollowed: map[string]bool{p.ToUser: true}})
	info, err := s.prod.Enqueue(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	s.startWorker(nil)

	s.waitFor("the task archived", 30*time.Second, func() bool {
		got, err := s.insp.GetTaskInfo(info.Queue, info.ID)
		return err == nil && got.State == asynq.TaskStateArchived
	})
	got, _ := s.insp.GetTaskInfo(info.Queue, info.ID)
	want := "errcode 43004: recipient does not follow the account"
	if got.LastErr != want || got.Retried != 0 {
		t.Errorf("archived with %q after %d retries, want %q after none", got.LastErr, got.Retried, want)
	}
	if st := s.fake.Stats(); st.SendAttempts != 1 {
		t.Errorf("%d send attempts, want exactly 1", st.SendAttempts)
	}
}

func TestWorkerRetriesTransientFailuresUntilDelivered(t *testing.T) {
	s := newStack(t, wechattest.Config{Seed: 7, Faults: wechattest.Faults{
		ErrcodeRate: map[int]float64{-1: 0.5},
	}})
	ctx := context.Background()
	const n = 40
	for i := range n {
		if _, err := s.prod.Enqueue(ctx, reminder(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.startWorker(nil)

	q := s.queue(tasks.PriorityDefault)
	s.waitFor("all delivered despite -1 answers", 60*time.Second, func() bool {
		return s.queueState(q).Completed == n
	})
	st := s.fake.Stats()
	if st.Deliveries != n || st.Errcodes[-1] == 0 {
		t.Fatalf("deliveries %d (want %d), -1 answers %d (want some)", st.Deliveries, n, st.Errcodes[-1])
	}
}
