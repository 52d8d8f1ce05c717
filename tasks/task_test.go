package tasks_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wxnotify/wxnotify/tasks"
)

func TestNewTaskStampsACopyOfThePayload(t *testing.T) {
	t.Parallel()
	p := validPayload()

	before := time.Now()
	task, err := tasks.NewTask(p)
	after := time.Now()

	if err != nil {
		t.Fatal(err)
	}
	if task.Type() != tasks.TypeSendTemplate {
		t.Errorf("Type = %q, want %q", task.Type(), tasks.TypeSendTemplate)
	}
	got, err := tasks.DecodePayload(task.Payload())
	if err != nil {
		t.Fatal(err)
	}
	if at := got.EnqueuedAt; at.Before(before.Truncate(time.Microsecond)) || at.After(after) {
		t.Errorf("EnqueuedAt = %v, want between %v and %v", at, before, after)
	}
	if !p.EnqueuedAt.IsZero() {
		t.Errorf("NewTask changed the caller's payload: EnqueuedAt = %v", p.EnqueuedAt)
	}
}

func TestNewTaskKeepsAGivenEnqueuedAt(t *testing.T) {
	t.Parallel()
	p := validPayload()
	p.EnqueuedAt = time.Date(2024, 4, 1, 8, 30, 0, 0, time.UTC)

	task, err := tasks.NewTask(p)
	if err != nil {
		t.Fatal(err)
	}

	got, err := tasks.DecodePayload(task.Payload())
	if err != nil {
		t.Fatal(err)
	}
	if !got.EnqueuedAt.Equal(p.EnqueuedAt) {
		t.Errorf("EnqueuedAt = %v, want %v", got.EnqueuedAt, p.EnqueuedAt)
	}
}

func TestNewTaskRefusesInvalidPayloads(t *testing.T) {
	t.Parallel()
	bad := validPayload()
	bad.ToUser = ""
	for name, p := range map[string]*tasks.Payload{"nil": nil, "no touser": bad} {
		task, err := tasks.NewTask(p)
		var ve *tasks.ValidationError
		if task != nil || !errors.As(err, &ve) {
			t.Errorf("%s: NewTask = %v, %v; want a *ValidationError", name, task, err)
		}
	}
}

func TestNewTaskRefusesTimeoutsAsynqWouldNotKeep(t *testing.T) {
	t.Parallel()
	cases := []struct {
		timeout time.Duration
		ok      bool
	}{
		{500 * time.Millisecond, false},
		{1500 * time.Millisecond, false},
		{-time.Second, false},
		{0, true},
		{time.Second, true},
		{5 * time.Minute, true},
	}
	for _, tc := range cases {
		_, err := tasks.NewTask(validPayload(), asynq.Timeout(tc.timeout))
		if (err == nil) != tc.ok {
			t.Errorf("NewTask with Timeout(%v) = %v, want ok=%v", tc.timeout, err, tc.ok)
		}
	}
}

// TestNewTaskDefaultOptions enqueues into the real wxnotify queue names
// of the test DB, so it does not run in parallel and deletes only its
// own tasks.
func TestNewTaskDefaultOptions(t *testing.T) {
	opt := testRedis(t)
	insp := newInspector(t, opt)
	for _, prio := range []tasks.Priority{"", tasks.PriorityCritical, tasks.PriorityLow} {
		t.Run(fmt.Sprintf("priority %q", prio), func(t *testing.T) {
			p := validPayload()
			p.ID = fmt.Sprintf("test-newtask-%d", time.Now().UnixNano())
			p.Priority = prio
			info := enqueueAndCleanUp(t, opt, insp, p)

			assertTaskInfo(t, insp, info.Queue, p.ID, wantTask{
				queue:     tasks.QueueName(tasks.DefaultQueuePrefix, prio),
				maxRetry:  tasks.DefaultMaxRetry,
				timeout:   tasks.DefaultTimeout,
				retention: tasks.DefaultRetention,
			})
		})
	}
}

// enqueueAndCleanUp enqueues NewTask(p) with a client of its own, and
// deletes the task, and its queue if it is left empty, when t ends.
func enqueueAndCleanUp(
	t *testing.T, opt asynq.RedisClientOpt, insp *asynq.Inspector, p *tasks.Payload,
) *asynq.TaskInfo {
	t.Helper()
	task, err := tasks.NewTask(p)
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(opt)
	defer client.Close()

	info, err := client.Enqueue(task)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := insp.DeleteTask(info.Queue, info.ID); err != nil {
			t.Errorf("delete task %s: %v", info.ID, err)
		}
		insp.DeleteQueue(info.Queue, false) // refused while others use it
	})
	return info
}

func TestNewTaskCallerOptionsOverrideDefaults(t *testing.T) {
	t.Parallel()
	opt := testRedis(t)
	prefix := testPrefix(t, opt)
	insp := newInspector(t, opt)
	client := asynq.NewClient(opt)
	defer client.Close()

	task, err := tasks.NewTask(validPayload(),
		asynq.Queue(tasks.QueueName(prefix, "")),
		asynq.MaxRetry(2),
		asynq.Timeout(5*time.Second),
		asynq.Retention(time.Minute),
		asynq.TaskID("caller-id"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Enqueue(task); err != nil {
		t.Fatal(err)
	}

	assertTaskInfo(t, insp, tasks.QueueName(prefix, ""), "caller-id", wantTask{
		queue:     tasks.QueueName(prefix, ""),
		maxRetry:  2,
		timeout:   5 * time.Second,
		retention: time.Minute,
	})
}

func TestNewTaskWithoutIDGetsARandomOne(t *testing.T) {
	t.Parallel()
	opt := testRedis(t)
	prefix := testPrefix(t, opt)
	client := asynq.NewClient(opt)
	defer client.Close()
	p := validPayload()
	p.ID = ""

	ids := map[string]bool{}
	for range 2 {
		task, err := tasks.NewTask(p, asynq.Queue(tasks.QueueName(prefix, "")))
		if err != nil {
			t.Fatal(err)
		}
		info, err := client.Enqueue(task)
		if err != nil {
			t.Fatalf("enqueue of a payload without id: %v", err)
		}
		ids[info.ID] = true
	}

	if len(ids) != 2 || ids[""] {
		t.Errorf("task ids = %v, want two distinct non-empty ids", ids)
	}
}

// wantTask is what assertTaskInfo expects of a stored task.
type wantTask struct {
	queue     string
	maxRetry  int
	timeout   time.Duration
	retention time.Duration
}

// assertTaskInfo reads task id from queue through the Inspector and
// compares it with want.
func assertTaskInfo(t *testing.T, insp *asynq.Inspector, queue, id string, want wantTask) {
	t.Helper()
	info, err := insp.GetTaskInfo(queue, id)
	if err != nil {
		t.Fatalf("GetTaskInfo(%s, %s): %v", queue, id, err)
	}

	got := wantTask{info.Queue, info.MaxRetry, info.Timeout, info.Retention}
	if got != want {
		t.Errorf("task %s = %+v, want %+v", id, got, want)
	}
	if info.ID != id || info.Type != tasks.TypeSendTemplate || info.State != asynq.TaskStatePending {
		t.Errorf("task = id %q type %q state %v, want id %q, send_template, pending",
			info.ID, info.Type, info.State, id)
	}
}
