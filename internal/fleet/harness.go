package fleet

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/wxnotify/wxnotify/internal/testredis"
	"github.com/wxnotify/wxnotify/tasks"
	"github.com/wxnotify/wxnotify/wechat/wechattest"
)

// The account a Harness gives the fake and the workers. The secret is
// fake, but the end-of-test check treats it as a real one.
const (
	AppID  = "wxf1ee70000000a001"
	Secret = "fleet-SECRET-never-in-a-log-0001"
)

// Template is the template id of the messages Message builds.
const Template = "TPL_FLEET_REMINDER"

// enqueueParallel is how many enqueues a Harness keeps in flight.
const enqueueParallel = 8

// Harness is one test's setting for a fleet: its slice of the test
// Redis, the fake WeChat, a producer and an inspector for its queues.
type Harness struct {
	// T is the test the harness reports to.
	T testing.TB
	// Redis is the test's slice of the test Redis; its Prefix names the
	// queues and prefixes the workers' keys.
	Redis *testredis.Env
	// Fake is the fake WeChat the workers call.
	Fake *wechattest.Server
	// Producer enqueues on the harness queues.
	Producer *tasks.Producer
	// Inspector reads the harness queues.
	Inspector *asynq.Inspector

	mu      sync.Mutex
	fleets  []*Fleet
	secrets []string
}

// New sets up a Harness. fake configures the fake WeChat; with Accounts
// nil it holds one account, AppID with Secret. When the test ends the
// Harness checks that no worker log line and no stored task error or
// result holds a secret (see CheckNoSecrets), then releases everything.
func New(t testing.TB, fake wechattest.Config) *Harness {
	t.Helper()
	Binary(t) // build before the test starts timing anything
	env := testredis.New(t)
	if fake.Accounts == nil {
		fake.Accounts = map[string]string{AppID: Secret}
	}
	h := &Harness{
		T:     t,
		Redis: env,
		Fake:  wechattest.NewTestServer(t, fake),
		Producer: tasks.NewProducer(testredis.ConnOpt(), tasks.ProducerOptions{
			QueuePrefix: env.Prefix,
		}),
		Inspector: asynq.NewInspector(testredis.ConnOpt()),
		secrets:   []string{Secret},
	}
	for _, s := range fake.Accounts {
		h.AddSecret(s)
	}

	t.Cleanup(func() {
		h.CheckNoSecrets()
		h.Producer.Close()
		h.Inspector.Close()
	})
	return h
}

// AddSecret adds s to what CheckNoSecrets looks for.
func (h *Harness) AddSecret(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()

	if s != "" {
		h.secrets = append(h.secrets, s)
	}
}

// Env returns the environment every worker of the harness gets, with
// extra on top; an empty value in extra removes the variable.
func (h *Harness) Env(extra map[string]string) map[string]string {
	env := map[string]string{
		"REDIS_URL":         testredis.URL(),
		"QUEUE_PREFIX":      h.Redis.Prefix,
		"REDIS_KEY_PREFIX":  h.Redis.Prefix + ":",
		"WECHAT_APPID":      AppID,
		"WECHAT_SECRET":     Secret,
		"WECHAT_API_BASE":   h.Fake.URL(),
		"LOG_FORMAT":        "json",
		"WORKER_RETRY_BASE": "200ms",
		"WORKER_RETRY_CAP":  "2s",
	}
	maps.Copy(env, extra)
	maps.DeleteFunc(env, func(_, v string) bool { return v == "" })
	return env
}

// Start runs n workers with h.Env(extra); see the package function Start.
// Any secret in extra is added to what CheckNoSecrets looks for.
func (h *Harness) Start(n int, extra map[string]string) *Fleet {
	h.T.Helper()
	env := h.Env(extra)
	for k, v := range env {
		if strings.Contains(k, "SECRET") && !strings.HasSuffix(k, "_FILE") {
			h.AddSecret(v)
		}
	}

	f := Start(h.T, n, env)
	h.mu.Lock()
	h.fleets = append(h.fleets, f)
	h.mu.Unlock()
	return f
}

// Message returns the i-th test message: its own id, recipient and URL,
// the harness template, no priority (the default queue).
func Message(i int) *tasks.Payload {
	return &tasks.Payload{
		ID:         fmt.Sprintf("fleet-%05d", i),
		ToUser:     fmt.Sprintf("oFLEET%022d", i),
		TemplateID: Template,
		URL:        fmt.Sprintf("https://pay.example.com/i/%d?src=wechat&ch=tpl", i),
		Data: map[string]tasks.Value{
			"thing1":  {Value: "物业费 12月"},
			"amount2": {Value: "¥1,280.00"},
		},
	}
}

// Messages returns Message(0) to Message(n-1).
func Messages(n int) []*tasks.Payload {
	ps := make([]*tasks.Payload, n)
	for i := range ps {
		ps[i] = Message(i)
	}
	return ps
}

// Enqueue enqueues every payload through the harness producer, several
// at a time, and returns their task infos in order. Any failure fails
// the test.
func (h *Harness) Enqueue(payloads ...*tasks.Payload) []*asynq.TaskInfo {
	h.T.Helper()
	infos := make([]*asynq.TaskInfo, len(payloads))
	errs := make([]error, len(payloads))
	next := make(chan int)
	var wg sync.WaitGroup
	for range enqueueParallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				infos[i], errs[i] = h.Producer.Enqueue(context.Background(), payloads[i])
			}
		}()
	}
	for i := range payloads {
		next <- i
	}
	close(next)
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			h.T.Fatalf("enqueue payload %d: %v", i, err)
		}
	}
	return infos
}

// Queue returns the name of the harness queue of priority p.
func (h *Harness) Queue(p tasks.Priority) string { return tasks.QueueName(h.Redis.Prefix, p) }

// QueueInfo returns the counts of the default-priority queue, all zero
// before the queue exists.
func (h *Harness) QueueInfo() *asynq.QueueInfo {
	info, err := h.Inspector.GetQueueInfo(h.Queue(tasks.PriorityDefault))
	if err != nil {
		return &asynq.QueueInfo{}
	}
	return info
}

// priorities are the three queues of a prefix.
var priorities = []tasks.Priority{tasks.PriorityCritical, tasks.PriorityDefault, tasks.PriorityLow}

// Tasks lists every task of the harness queues in every state.
func (h *Harness) Tasks() []*asynq.TaskInfo {
	var out []*asynq.TaskInfo
	for _, p := range priorities {
		out = append(out, listAll(h.Inspector, h.Queue(p))...)
	}
	return out
}

// listAll lists the tasks of queue q in every state, page by page.
func listAll(insp *asynq.Inspector, q string) []*asynq.TaskInfo {
	lists := []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		insp.ListPendingTasks, insp.ListActiveTasks, insp.ListScheduledTasks,
		insp.ListRetryTasks, insp.ListArchivedTasks, insp.ListCompletedTasks,
	}
	const size = 1000
	var out []*asynq.TaskInfo
	for _, list := range lists {
		for page := 1; ; page++ {
			infos, err := list(q, asynq.PageSize(size), asynq.Page(page))
			out = append(out, infos...)
			if err != nil || len(infos) < size {
				break
			}
		}
	}
	return out
}

// Logs returns the logs of every fleet the harness started.
func (h *Harness) Logs() string {
	h.mu.Lock()
	fleets := append([]*Fleet(nil), h.fleets...)
	h.mu.Unlock()

	var b strings.Builder
	for _, f := range fleets {
		b.WriteString(f.Logs())
	}
	return b.String()
}
