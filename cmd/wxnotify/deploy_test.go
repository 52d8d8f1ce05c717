package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.yaml.in/yaml/v3"
)

// repoRoot is the module root, relative to this package.
const repoRoot = "../.."

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// composeService is the part of a docker-compose service the tests read.
type composeService struct {
	Image           string            `yaml:"image"`
	Command         []string          `yaml:"command"`
	Environment     map[string]string `yaml:"environment"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
}

func loadCompose(t *testing.T) map[string]composeService {
	t.Helper()
	var doc struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "docker-compose.yml")), &doc); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"redis", "worker", "wechat-mock", "asynqmon"} {
		if _, ok := doc.Services[name]; !ok {
			t.Fatalf("docker-compose.yml has no service %q", name)
		}
	}
	return doc.Services
}

func TestComposeRedisKeepsEveryTask(t *testing.T) {
	t.Parallel()
	redis := loadCompose(t)["redis"]
	if !regexp.MustCompile(`^redis:7(\.\d+)*(-[a-z0-9.]+)?$`).MatchString(redis.Image) {
		t.Errorf("redis image %q, want redis:7.x", redis.Image)
	}
	for flagName, want := range map[string]string{
		"--appendonly": "yes", "--maxmemory-policy": "noeviction",
	} {
		i := slices.Index(redis.Command, flagName)
		if i < 0 || i+1 >= len(redis.Command) || redis.Command[i+1] != want {
			t.Errorf("redis command %q lacks %s %s", redis.Command, flagName, want)
		}
	}
}

func TestComposeAsynqmonWatchesTheRedisService(t *testing.T) {
	t.Parallel()
	mon := loadCompose(t)["asynqmon"]
	if !strings.HasPrefix(mon.Image, "hibiken/asynqmon:") {
		t.Errorf("asynqmon image %q, want hibiken/asynqmon:*", mon.Image)
	}
	raw := mon.Environment["REDIS_URL"]
	for _, arg := range mon.Command {
		if v, ok := strings.CutPrefix(arg, "--redis-url="); ok {
			raw = v
		}
	}
	if u, err := url.Parse(raw); err != nil || u.Hostname() != "redis" || u.Port() != "6379" {
		t.Errorf("asynqmon redis url %q, want the redis service on 6379", raw)
	}
}

func TestComposeWorkerAndMockUseRealSettings(t *testing.T) {
	t.Parallel()
	services := loadCompose(t)
	for _, name := range []string{"worker", "wechat-mock"} {
		for v := range services[name].Environment {
			known := slices.ContainsFunc(envVars, func(e envVar) bool { return e.Name == v })
			if !known {
				t.Errorf("%s sets %s, which wxnotify does not read", name, v)
			}
		}
		te := newTestEnv(t, nil)
		err := te.run(context.Background(), append(services[name].Command, "-h")...)
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s command %q is not a subcommand with those flags: %v",
				name, services[name].Command, err)
		}
	}
	if cmd := services["worker"].Command; len(cmd) == 0 || cmd[0] != "worker" {
		t.Errorf("worker service runs %q, want the worker subcommand", cmd)
	}
	if cmd := services["wechat-mock"].Command; len(cmd) == 0 || cmd[0] != "mock" {
		t.Errorf("wechat-mock service runs %q, want the mock subcommand", cmd)
	}
}

func TestComposeWorkerReachesRedisAndTheMock(t *testing.T) {
	t.Parallel()
	services := loadCompose(t)
	env := services["worker"].Environment
	cfg, err := loadConfig(func(name string) string { return env[name] }, true)
	if err != nil {
		t.Fatalf("the worker's environment does not load: %v", err)
	}

	if _, err := asynq.ParseRedisURI(env["REDIS_URL"]); err != nil {
		t.Errorf("worker REDIS_URL: %v", err)
	}
	if u, _ := url.Parse(env["REDIS_URL"]); u == nil || u.Hostname() != "redis" {
		t.Errorf("worker REDIS_URL %q does not name the redis service", env["REDIS_URL"])
	}
	api, err := url.Parse(cfg.APIBase)
	if err != nil || api.Hostname() != "wechat-mock" || api.Port() != mockPort(t, services) {
		t.Errorf("worker WECHAT_API_BASE %q, want the wechat-mock service on port %s",
			cfg.APIBase, mockPort(t, services))
	}

	grace, err := time.ParseDuration(services["worker"].StopGracePeriod)
	if err != nil || grace <= cfg.ShutdownTimeout {
		t.Errorf("worker stop_grace_period %q, want longer than WORKER_SHUTDOWN_TIMEOUT %s",
			services["worker"].StopGracePeriod, cfg.ShutdownTimeout)
	}
}

// mockPort is the port wechat-mock's --addr listens on.
func mockPort(t *testing.T, services map[string]composeService) string {
	t.Helper()
	cmd := services["wechat-mock"].Command
	addr := "127.0.0.1:8090" // mock's --addr default
	for i, arg := range cmd {
		if v, ok := strings.CutPrefix(arg, "--addr="); ok {
			addr = v
		} else if arg == "--addr" && i+1 < len(cmd) {
			addr = cmd[i+1]
		}
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("wechat-mock --addr %q: %v", addr, err)
	}
	return port
}

func TestDockerfileBuildsTheStaticBinaryOfThisGoVersion(t *testing.T) {
	t.Parallel()
	dockerfile := readRepoFile(t, "Dockerfile")
	build := regexp.MustCompile(`(?m)^RUN .*CGO_ENABLED=0 go build .*\./cmd/wxnotify\s*$`)
	if !build.MatchString(dockerfile) {
		t.Error("Dockerfile has no RUN line building ./cmd/wxnotify with CGO_ENABLED=0")
	}
	image := regexp.MustCompile(`(?m)^FROM golang:(\d+\.\d+)\b`).FindStringSubmatch(dockerfile)
	goMod := readRepoFile(t, "go.mod")
	goDirective := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(goMod)
	if image == nil || goDirective == nil || image[1] != goDirective[1] {
		t.Errorf("Dockerfile golang image %v, go.mod go directive %v: want the same major.minor",
			image, goDirective)
	}

	bin := buildStatic(t)
	out, err := exec.Command(bin, "help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Commands:") {
		t.Errorf("the built binary's help failed (%v):\n%s", err, out)
	}
}

// buildStatic builds ./cmd/wxnotify as the image does and returns the
// binary's path.
func buildStatic(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to build with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "wxnotify")
	cmd := exec.Command(goBin, "build", "-trimpath", "-o", bin, "./cmd/wxnotify")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build ./cmd/wxnotify: %v\n%s", err, out)
	}
	return bin
}

func TestReadmeConfigurationTableMatchesEnvVars(t *testing.T) {
	t.Parallel()
	rows := readmeConfigTable(t, readRepoFile(t, "README.md"))
	var want []string
	for _, v := range envVars {
		want = append(want, v.Name+"="+v.Default)
	}
	if !slices.Equal(rows, want) {
		t.Errorf("README table (name=default):\n  %s\nenvVars:\n  %s",
			strings.Join(rows, "\n  "), strings.Join(want, "\n  "))
	}
}

// readmeConfigTable returns the "name=default" of every row of the
// README's configuration table.
func readmeConfigTable(t *testing.T, readme string) []string {
	t.Helper()
	_, table, ok := strings.Cut(readme, "| variable | default | meaning |\n")
	if !ok {
		t.Fatal("README has no configuration table")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	var rows []string
	for _, line := range strings.Split(table, "\n")[1:] { // skip | --- |
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			t.Fatalf("README table row %q has too few cells", line)
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		def := strings.Trim(strings.TrimSpace(cells[2]), "`")
		rows = append(rows, name+"="+def)
	}
	return rows
}
