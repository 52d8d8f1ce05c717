package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxnotify/wxnotify/wechat/wechattest"
)

// lab holds what every scenario shares: a temp dir, the wxnotify binary
// built from this tree, and the harness's own binary for the references.
type lab struct {
	dir  string
	bin  string // wxnotify
	self string // this harness, for `harness ref`
	root string // module root
}

func newLab(ctx context.Context) (*lab, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "wxnotify-bench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	l := &lab{dir: dir, root: root, bin: filepath.Join(dir, "wxnotify")}

	if l.self, err = os.Executable(); err != nil {
		return nil, fmt.Errorf("find own binary: %w", err)
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", l.bin, "./cmd/wxnotify")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("build ./cmd/wxnotify: %w", err)
	}
	return l, nil
}

func (l *lab) close() { os.RemoveAll(l.dir) }

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the harness inside the wxnotify module")
		}
		dir = parent
	}
}

// freePort asks the kernel for a loopback port nobody listens on.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// redisProc is a private redis-server on a port of its own.
type redisProc struct {
	port int
	dir  string
	aof  bool
	cmd  *exec.Cmd
	rdb  *redis.Client
}

// startRedis starts a private redis-server; aof turns on the append-only
// file (appendfsync everysec, Redis's default), otherwise nothing persists.
func (l *lab) startRedis(ctx context.Context, aof bool) (*redisProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(l.dir, "redis-")
	if err != nil {
		return nil, err
	}
	r := &redisProc{port: port, dir: dir, aof: aof}
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	r.rdb = redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1})
	return r, nil
}

func (r *redisProc) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// url is the REDIS_URL of the workers.
func (r *redisProc) url() string { return "redis://" + r.addr() + "/0" }

func (r *redisProc) start(ctx context.Context) error {
	appendonly := "no"
	if r.aof {
		appendonly = "yes"
	}
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", appendonly, "--dir", r.dir,
		"--logfile", filepath.Join(r.dir, "redis.log"), "--maxmemory-policy", "noeviction")
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server (is it installed?): %w", err)
	}
	probe := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer probe.Close()
	for range 100 {
		if probe.Ping(ctx).Err() == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on port %d did not answer", r.port)
}

// kill stops redis-server at once, as a crash would.
func (r *redisProc) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Signal(syscall.SIGKILL)
		r.cmd.Wait()
	}
}

func (r *redisProc) close() {
	if r.rdb != nil {
		r.rdb.Close()
	}
	r.kill()
}

// commandStats returns INFO commandstats as command -> calls.
func (r *redisProc) commandStats(ctx context.Context) (map[string]int64, error) {
	txt, err := r.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("info commandstats: %w", err)
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(txt))
	for sc.Scan() {
		name, rest, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
		out[name] = n
	}
	return out, nil
}

// usedMemory returns INFO memory's used_memory in bytes.
func (r *redisProc) usedMemory(ctx context.Context) (int64, error) {
	txt, err := r.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("info memory: %w", err)
	}
	for line := range strings.SplitSeq(txt, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("info memory: no used_memory")
}

// startFake starts a fake WeChat on a loopback port.
func startFake(cfg wechattest.Config) (*wechattest.Server, error) {
	s := wechattest.NewServer(cfg)
	if err := s.Start("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("start fake wechat: %w", err)
	}
	return s, nil
}

// proc is a child process: a worker or a reference consumer.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// spawn starts bin with args and exactly the environment env (plus PATH
// and HOME), stderr and stdout going to a log file in the lab.
func (l *lab) spawn(name, bin string, args []string, env map[string]string) (*proc, error) {
	logf, err := os.CreateTemp(l.dir, name+"-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logf.Name(), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends sig and waits up to limit for the exit; it kills the
// process after that. It returns how long the exit took.
func (p *proc) stop(sig syscall.Signal, limit time.Duration) time.Duration {
	start := time.Now()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(limit):
		p.cmd.Process.Kill()
		<-p.done
	}
	return time.Since(start)
}

// tail returns the last lines of the process's log, for error messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-5):], "\n")
}

// cpuSeconds is utime+stime of pid from /proc/<pid>/stat.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks
}

// sigterm asks a process to stop gracefully.
const sigterm = syscall.SIGTERM

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// rssKB returns VmRSS and VmHWM (peak) of pid in KiB.
func rssKB(pid int) (cur, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			cur = n
		case "VmHWM:":
			peak = n
		}
	}
	return cur, peak
}
