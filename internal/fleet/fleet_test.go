package fleet

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/wechat/wechattest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

func TestStartReturnsOnceEveryWorkerHasStarted(t *testing.T) {
	h := New(t, wechattest.Config{})
	f := h.Start(2, nil)

	for i := range f.Len() {
		if !strings.Contains(f.Log(i), startedMessage) {
			t.Errorf("worker %d has not logged %s:\n%s", i, startedMessage, f.Log(i))
		}
		if f.Exited(i) {
			t.Errorf("worker %d exited", i)
		}
	}
	seen := map[any]bool{}
	for _, line := range f.LogLines() {
		if line["message"] == "worker started" {
			seen[line[ProcKey]] = true
		}
	}
	if !seen[0] || !seen[1] {
		t.Errorf("LogLines shows workers %v starting, want 0 and 1", seen)
	}
}

func TestStopEndsAWorkerCleanlyAndKillDoesNot(t *testing.T) {
	h := New(t, wechattest.Config{})
	f := h.Start(2, nil)

	if err := f.Stop(0); err != nil {
		t.Errorf("Stop(0) = %v, want a clean exit", err)
	}
	f.Kill(1)

	if !f.Exited(0) || !f.Exited(1) {
		t.Fatalf("exited: worker 0 %v, worker 1 %v; want both", f.Exited(0), f.Exited(1))
	}
	if !strings.Contains(f.Log(0), `"message":"worker stopped"`) {
		t.Errorf("worker 0 did not log a clean stop:\n%s", f.Log(0))
	}
	if strings.Contains(f.Log(1), `"message":"stopping`) {
		t.Errorf("worker 1 shut down in order after SIGKILL:\n%s", f.Log(1))
	}
}

func TestAddStartsAnotherWorkerWithTheSameEnvironment(t *testing.T) {
	h := New(t, wechattest.Config{})
	f := h.Start(1, nil)

	i := f.Add()
	if i != 1 || f.Len() != 2 || f.Exited(1) {
		t.Fatalf("Add = %d with %d workers (exited %v), want worker 1 of 2 running",
			i, f.Len(), f.Exited(1))
	}
	if f.PID(0) == f.PID(1) {
		t.Errorf("both workers have pid %d", f.PID(0))
	}
}

func TestWorkersDeliverWhatTheHarnessEnqueues(t *testing.T) {
	h := New(t, wechattest.Config{})
	const n = 30
	infos := h.Enqueue(Messages(n)...)
	h.Start(2, nil)

	h.WaitCompleted(n, 30*time.Second)
	h.CheckDeliveredOnce(n)
	if infos[7].ID != Message(7).ID {
		t.Errorf("task 7 has id %q, want %q", infos[7].ID, Message(7).ID)
	}
}

func TestStartReportsAWorkerThatExitsBeforeStarting(t *testing.T) {
	h := New(t, wechattest.Config{})
	env := h.Env(map[string]string{"WECHAT_APPID": ""})
	f := &Fleet{t: t, bin: Binary(t), env: environ(env), dir: t.TempDir(), stopGrace: time.Second}
	t.Cleanup(f.cleanup)

	if _, err := f.launch(); err != nil {
		t.Fatal(err)
	}
	err := f.awaitStarted(0, 1)
	if err == nil || !strings.Contains(err.Error(), "exited before it started") ||
		!strings.Contains(err.Error(), "WECHAT_APPID") {
		t.Fatalf("awaitStarted = %v, want the early exit with the worker's reason", err)
	}
}

func TestEnvironOnlyPassesPathHomeAndTheGivenVariables(t *testing.T) {
	t.Setenv("WXNOTIFY_FLEET_LEAK", "1")
	got := environ(map[string]string{"B": "2", "A": "1", "HOME": "/h"})

	want := []string{"PATH=" + os.Getenv("PATH"), "A=1", "B=2", "HOME=/h"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("environ = %v, want %v", got, want)
	}
}

func TestEnvRemovesVariablesGivenEmpty(t *testing.T) {
	h := New(t, wechattest.Config{})
	env := h.Env(map[string]string{"WECHAT_SECRET": "", "WORKER_CONCURRENCY": "7"})

	if _, ok := env["WECHAT_SECRET"]; ok {
		t.Error("WECHAT_SECRET is still set")
	}
	if env["WORKER_CONCURRENCY"] != "7" || env["QUEUE_PREFIX"] != h.Redis.Prefix {
		t.Errorf("env = %v, want the extra variable on top of the base", env)
	}
}

// recorder keeps the errors a check reports instead of failing the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheckNoSecretsFindsATokenInAWorkerLog(t *testing.T) {
	h := New(t, wechattest.Config{})
	token := fetchToken(t, h.Fake.URL())
	path := filepath.Join(t.TempDir(), "leaky.log")
	line := `{"level":"info","message":"sent","url":"/send?access_token=` + token + `"}` + "\n"
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	leaky := &Fleet{t: t, procs: []*proc{{log: path, done: make(chan struct{})}}}

	rec := &recorder{TB: t}
	h.T, h.fleets = rec, []*Fleet{leaky}
	h.CheckNoSecrets()
	h.T, h.fleets = t, nil

	if len(rec.errs) != 1 || strings.Contains(rec.errs[0], token) {
		t.Fatalf("CheckNoSecrets reported %q, want one error that names no token", rec.errs)
	}
}

// fetchToken gets a token from the fake's classic endpoint.
func fetchToken(t *testing.T, base string) string {
	t.Helper()
	q := url.Values{"grant_type": {"client_credential"}, "appid": {AppID}, "secret": {Secret}}
	resp, err := http.Get(base + "/cgi-bin/token?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("token endpoint: %v, token %q", err, body.AccessToken)
	}
	return body.AccessToken
}

// failed is a test that has already failed, and keeps what it logs.
type failed struct {
	testing.TB
	logs []string
}

func (f *failed) Failed() bool { return true }

func (f *failed) Logf(format string, args ...any) {
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}

func TestCleanupKeepsTheLogsOfAFailedTest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "worker-0.log")
	if err := os.WriteFile(path, []byte(`{"message":"worker started"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	close(done)
	tb := &failed{TB: t}
	f := &Fleet{t: tb, procs: []*proc{{log: path, done: done}}}

	f.cleanup()

	if len(tb.logs) != 1 {
		t.Fatalf("cleanup logged %q, want where the logs went", tb.logs)
	}
	dir := tb.logs[0][strings.LastIndex(tb.logs[0], " ")+1:]
	defer os.RemoveAll(dir)
	kept, err := os.ReadFile(filepath.Join(dir, "worker-0.log"))
	if err != nil || !strings.Contains(string(kept), "worker started") {
		t.Errorf("kept log %q (%v), want the worker's log", kept, err)
	}
}
