package main

import (
	"context"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/internal/testredis"
	"github.com/wxnotify/wxnotify/tasks"
)

func TestDemoShowsWhatHappenedToEachReminder(t *testing.T) {
	t.Parallel()
	cases := map[string]func(t *testing.T) (vars map[string]string, queue string){
		"embedded redis": func(t *testing.T) (map[string]string, string) {
			return map[string]string{}, ""
		},
		"redis url": func(t *testing.T) (map[string]string, string) {
			rds := testredis.New(t)
			return redisVars(rds, nil), tasks.QueueName(rds.Prefix, tasks.PriorityCritical)
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			vars, queue := setup(t)
			te := newTestEnv(t, vars)
			if err := te.run(context.Background(), "demo", "--timeout", "30s"); err != nil {
				t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, te.stdout.String(), te.stderr.String())
			}

			checkDemoOutput(t, te.stdout.String(), te.stderr.String())
			if queue != "" {
				checkDemoQueue(t, queue)
			}
		})
	}
}

func checkDemoOutput(t *testing.T, stdout, stderr string) {
	t.Helper()
	counts := []struct {
		text string
		n    int
	}{
		{"delivered, msgid ", 5},
		{"archived: errcode 43004", 1},
		{"rejected at enqueue: ", 1},
	}
	for _, c := range counts {
		if got := strings.Count(stdout, c.text); got != c.n {
			t.Errorf("stdout has %q %d times, want %d:\n%s", c.text, got, c.n, stdout)
		}
	}
	for _, l := range strings.Split(stdout, "\n") {
		if strings.Contains(l, "rejected at enqueue") && !strings.Contains(l, "data.thing1.value") {
			t.Errorf("the rejection does not name data.thing1.value: %q", l)
		}
	}
	for _, marker := range []string{"panic", "goroutine ", ".go:"} {
		if strings.Contains(stdout+stderr, marker) {
			t.Errorf("output holds %q:\n%s\n%s", marker, stdout, stderr)
		}
	}
}

// checkDemoQueue checks the demo used the queue prefix it was given.
func checkDemoQueue(t *testing.T, queue string) {
	t.Helper()
	insp := newInspector(t)
	info, err := insp.GetQueueInfo(queue)
	if err != nil {
		t.Fatalf("queue %s: %v", queue, err)
	}
	if info.Completed != 5 || info.Archived != 1 {
		t.Errorf("queue %s: %d completed, %d archived; want 5 and 1",
			queue, info.Completed, info.Archived)
	}
}
