package fleet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Timings of the fleet. StartTimeout bounds how long a worker may take to
// log "worker started"; CleanupGrace is how long the end-of-test cleanup
// waits after SIGTERM before it sends SIGKILL.
const (
	StartTimeout = 30 * time.Second
	CleanupGrace = 15 * time.Second
)

// ProcKey is the key LogLines adds to every line: the index of the
// process that wrote it.
const ProcKey = "fleet_proc"

// startedMessage is the log message of a worker ready to take tasks.
const startedMessage = `"message":"worker started"`

// Fleet is a set of running `wxnotify worker` processes that share one
// environment. Its methods are meant for the test goroutine; Logs and
// LogLines may be called from any goroutine.
type Fleet struct {
	t   testing.TB
	bin string
	env []string
	dir string
	// stopGrace is how long Stop waits after SIGTERM: the worker's
	// shutdown timeout and some slack.
	stopGrace time.Duration

	mu    sync.Mutex
	procs []*proc
}

// proc is one worker process.
type proc struct {
	index int
	cmd   *exec.Cmd
	log   string // path of the file its stdout and stderr go to
	done  chan struct{}
	err   error // the exit error; read only after done is closed

	mu    sync.Mutex
	kept  string // the log, read into memory by the cleanup
	ended bool
}

// text returns what p has written so far.
func (p *proc) text() string {
	p.mu.Lock()
	defer p.mu.Unlock()

	if p.ended {
		return p.kept
	}
	return readFile(p.log)
}

// keep reads p's log into memory for good.
func (p *proc) keep() {
	p.mu.Lock()
	defer p.mu.Unlock()

	p.kept, p.ended = readFile(p.log), true
}

// Start runs n `wxnotify worker` processes with env (plus PATH and HOME
// from the test process; nothing else is inherited) and waits until each
// has logged "worker started". It fails the test if one exits or stays
// silent for StartTimeout. Every process is stopped when the test ends.
func Start(t testing.TB, n int, env map[string]string) *Fleet {
	t.Helper()
	f := &Fleet{
		t:         t,
		bin:       Binary(t),
		env:       environ(env),
		dir:       t.TempDir(),
		stopGrace: shutdownTimeout(env) + 10*time.Second,
	}
	t.Cleanup(f.cleanup)

	for range n {
		if _, err := f.launch(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.awaitStarted(0, n); err != nil {
		t.Fatal(err)
	}
	return f
}

// environ turns env into the child's environment, PATH and HOME first
// unless env sets them.
func environ(env map[string]string) []string {
	out := make([]string, 0, len(env)+2)
	for _, k := range []string{"PATH", "HOME"} {
		if _, set := env[k]; !set {
			out = append(out, k+"="+os.Getenv(k))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// shutdownTimeout is the worker's WORKER_SHUTDOWN_TIMEOUT, or its
// default of 30 s.
func shutdownTimeout(env map[string]string) time.Duration {
	if d, err := time.ParseDuration(env["WORKER_SHUTDOWN_TIMEOUT"]); err == nil && d > 0 {
		return d
	}
	return 30 * time.Second
}

// Add starts one more worker with the fleet's environment, waits until it
// has started, and returns its index.
func (f *Fleet) Add() int {
	f.t.Helper()
	p, err := f.launch()
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.awaitStarted(p.index, p.index+1); err != nil {
		f.t.Fatal(err)
	}
	return p.index
}

// launch starts one process without waiting for it to be ready.
func (f *Fleet) launch() (*proc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()

	p := &proc{index: len(f.procs), done: make(chan struct{})}
	p.log = filepath.Join(f.dir, fmt.Sprintf("worker-%d.log", p.index))
	out, err := os.Create(p.log)
	if err != nil {
		return nil, fmt.Errorf("worker %d: create log: %w", p.index, err)
	}
	defer out.Close() // the child holds its own descriptor

	p.cmd = exec.Command(f.bin, "worker")
	p.cmd.Env = f.env
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := spawn(p.cmd); err != nil {
		return nil, fmt.Errorf("worker %d: start: %w", p.index, err)
	}

	f.procs = append(f.procs, p)
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// awaitStarted waits until processes [from, to) have logged that they
// started.
func (f *Fleet) awaitStarted(from, to int) error {
	deadline := time.Now().Add(StartTimeout)
	for i := from; i < to; i++ {
		p := f.proc(i)
		for !strings.Contains(p.text(), startedMessage) {
			select {
			case <-p.done:
				return fmt.Errorf("worker %d exited before it started (%v); its log:\n%s",
					i, p.err, p.text())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("worker %d did not log %s within %s; its log:\n%s",
					i, startedMessage, StartTimeout, p.text())
			}
		}
	}
	return nil
}

func (f *Fleet) proc(i int) *proc {
	f.mu.Lock()
	defer f.mu.Unlock()

	if i < 0 || i >= len(f.procs) {
		f.t.Fatalf("fleet: no worker %d (there are %d)", i, len(f.procs))
	}
	return f.procs[i]
}

// Len returns how many processes the fleet has started, running or not.
func (f *Fleet) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()

	return len(f.procs)
}

// PID returns the process id of worker i.
func (f *Fleet) PID(i int) int { return f.proc(i).cmd.Process.Pid }

// Exited reports whether worker i has exited.
func (f *Fleet) Exited(i int) bool {
	select {
	case <-f.proc(i).done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to worker i, waits for it to exit and returns its
// exit error: nil for a clean exit with status 0. A worker still running
// after its shutdown timeout and 10 s more is killed, and Stop says so.
func (f *Fleet) Stop(i int) error {
	p := f.proc(i)
	if err := signal(p, syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(f.stopGrace):
	}

	_ = signal(p, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("worker %d did not exit within %s of SIGTERM; killed", i, f.stopGrace)
}

// Kill sends SIGKILL to worker i and waits until it is gone, as a crash
// or an OOM kill would end it: no shutdown, no requeue.
func (f *Fleet) Kill(i int) {
	p := f.proc(i)
	if err := signal(p, syscall.SIGKILL); err != nil {
		f.t.Errorf("fleet: %v", err)
	}
	<-p.done
}

// StopAll stops every running worker at once, as Stop does, and returns
// their exit errors joined.
func (f *Fleet) StopAll() error {
	n := f.Len()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		if f.Exited(i) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.Stop(i); err != nil {
				errs[i] = fmt.Errorf("worker %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// signal sends sig to p unless it has already exited.
func signal(p *proc, sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("worker %d: send %v: %w", p.index, sig, err)
	}
	return nil
}

// cleanup ends every process still running: SIGTERM, then SIGKILL after
// CleanupGrace. It keeps the logs in memory, since the log directory goes
// with the test's temporary directory.
func (f *Fleet) cleanup() {
	procs := f.snapshot()
	for _, p := range procs {
		_ = signal(p, syscall.SIGTERM)
	}
	deadline := time.After(CleanupGrace)
	for _, p := range procs {
		select {
		case <-p.done:
		case <-deadline:
			f.t.Errorf("fleet: worker %d ignored SIGTERM for %s; killed", p.index, CleanupGrace)
			_ = signal(p, syscall.SIGKILL)
			<-p.done
		}
	}

	for _, p := range procs {
		p.keep()
	}
	if f.t.Failed() {
		f.keepLogs(procs)
	}
}

// keepLogs copies the logs of a failed test out of its temporary
// directory, which is about to go, and says where they are.
func (f *Fleet) keepLogs(procs []*proc) {
	dir, err := os.MkdirTemp("", "wxnotify-fleet-logs-")
	if err != nil {
		f.t.Logf("fleet: worker logs not kept: %v", err)
		return
	}
	for _, p := range procs {
		_ = os.WriteFile(filepath.Join(dir, filepath.Base(p.log)), []byte(p.text()), 0o600)
	}
	f.t.Logf("fleet: the test failed; the logs of its %d workers are in %s", len(procs), dir)
}

// Log returns what worker i has written so far.
func (f *Fleet) Log(i int) string { return f.proc(i).text() }

// Logs returns what every worker has written, worker 0 first.
func (f *Fleet) Logs() string {
	var b strings.Builder
	for _, p := range f.snapshot() {
		b.WriteString(p.text())
	}
	return b.String()
}

// LogLines returns every worker's log lines decoded from JSON, worker 0
// first, each with ProcKey set to the index of its worker. A line that is
// not JSON (a panic, a configuration error) comes back as {"raw": line}.
func (f *Fleet) LogLines() []map[string]any {
	var out []map[string]any
	for _, p := range f.snapshot() {
		out = append(out, decodeLines(p.text(), p.index)...)
	}
	return out
}

func (f *Fleet) snapshot() []*proc {
	f.mu.Lock()
	defer f.mu.Unlock()

	return slices.Clone(f.procs)
}

// decodeLines decodes the JSON lines of text and records proc under
// ProcKey in each.
func decodeLines(text string, proc int) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		m := map[string]any{}
		if json.Unmarshal(line, &m) != nil {
			m = map[string]any{"raw": string(line)}
		}
		m[ProcKey] = proc
		out = append(out, m)
	}
	return out
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
