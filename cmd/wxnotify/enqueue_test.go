package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/internal/testredis"
	"github.com/wxnotify/wxnotify/tasks"
)

// payloadLine is one valid JSON line with the given id and recipient.
func payloadLine(id, toUser string) string {
	return fmt.Sprintf(`{"id":%q,"touser":%q,"template_id":"TPL_DUE",`+
		`"data":{"thing1":{"value":"物业费"},"amount2":{"value":"¥1,280.00"}}}`, id, toUser)
}

// mixedLines holds every kind of line enqueue must tell apart. Line
// numbers count from 1, blank lines included: 1, 7 and 9 are enqueued,
// 2 is not JSON, 3 has no touser, 4 misspells template_id, 5 and 8 are
// blank and 6 repeats the id of line 1.
var mixedLines = strings.Join([]string{
	payloadLine("inv-1", "oUSER00000000000000000001"),
	`{"id":"inv-2","touser":"oUSER2","template_id":"TPL_DUE","data":{`,
	`{"id":"inv-3","template_id":"TPL_DUE","data":{"thing1":{"value":"水费"}}}`,
	`{"id":"inv-4","touser":"oUSER4","temlate_id":"TPL","data":{"thing1":{"value":"x"}}}`,
	"",
	payloadLine("inv-1", "oUSER00000000000000000001"),
	payloadLine("inv-7", "oUSER00000000000000000007"),
	"   ",
	payloadLine("inv-9", "oUSER00000000000000000009"),
}, "\n") + "\n"

func TestEnqueueLinesReportsEachRejectedLineByNumber(t *testing.T) {
	t.Parallel()
	for _, source := range []string{"file", "stdin", "dash"} {
		t.Run(source, func(t *testing.T) {
			t.Parallel()
			rds := testredis.New(t)
			te := newTestEnv(t, redisVars(rds, nil))
			args := []string{"enqueue"}
			switch source {
			case "file":
				args = append(args, "--file", writeFile(t, t.TempDir(), "due.jsonl", mixedLines))
			case "dash":
				args = append(args, "--file", "-")
				te.stdin = mixedLines
			default:
				te.stdin = mixedLines
			}

			err := te.run(context.Background(), args...)
			if code := exitCode(err, &bytes.Buffer{}); code != 1 {
				t.Errorf("exit code %d (%v), want 1 for a run with rejected lines", code, err)
			}
			out := te.stdout.String()
			for _, want := range []string{
				"line 2: rejected: payload: invalid JSON",
				"line 3: rejected: touser: required",
				"line 4: rejected: temlate_id: unknown field",
				`line 6: duplicate id "inv-1", same as line 1; skipped`,
				"enqueued 3, duplicates 1, rejected 3\n",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if n := len(regexp.MustCompile(`(?m)^line `).FindAllString(out, -1)); n != 4 {
				t.Errorf("output reports %d lines, want 4:\n%s", n, out)
			}

			got := queuedIDs(t, newInspector(t), defaultQueue(rds.Prefix))
			want := map[string]int{"inv-1": 1, "inv-7": 1, "inv-9": 1}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("queue holds %v, want %v", got, want)
			}
		})
	}
}

func TestEnqueueSameFileTwiceReportsAllAsDuplicates(t *testing.T) {
	t.Parallel()
	rds := testredis.New(t)
	var lines []string
	for i := range 5 {
		lines = append(lines, payloadLine(fmt.Sprintf("rent-%d", i), fmt.Sprintf("oRENT%020d", i)))
	}
	path := writeFile(t, t.TempDir(), "rent.jsonl", strings.Join(lines, "\n"))

	runs := []string{"enqueued 5, duplicates 0, rejected 0", "enqueued 0, duplicates 5, rejected 0"}
	for i, want := range runs {
		te := newTestEnv(t, redisVars(rds, nil))
		err := te.run(context.Background(), "enqueue", "--file", path)
		if code := exitCode(err, &bytes.Buffer{}); code != 0 {
			t.Fatalf("run %d: exit code %d (%v), want 0", i+1, code, err)
		}
		if !strings.Contains(te.stdout.String(), path+": "+want+"\n") {
			t.Errorf("run %d output lacks %q:\n%s", i+1, want, te.stdout.String())
		}
	}

	got := queuedIDs(t, newInspector(t), defaultQueue(rds.Prefix))
	if len(got) != 5 {
		t.Errorf("queue holds %d ids, want 5: %v", len(got), got)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("id %s queued %d times", id, n)
		}
	}
}

func TestEnqueueSameIDWithAnotherPriorityIsAnotherTask(t *testing.T) {
	t.Parallel()
	rds := testredis.New(t)
	critical := strings.Replace(payloadLine("inv-5", "oUSER5"), `{`, `{"priority":"critical",`, 1)
	te := newTestEnv(t, redisVars(rds, nil))
	te.stdin = payloadLine("inv-5", "oUSER5") + "\n" + critical + "\n"

	if err := te.run(context.Background(), "enqueue"); err != nil {
		t.Fatalf("enqueue: %v\n%s", err, te.stdout.String())
	}
	if !strings.Contains(te.stdout.String(), "enqueued 2, duplicates 0, rejected 0") {
		t.Errorf("output:\n%s", te.stdout.String())
	}
	insp := newInspector(t)
	for _, p := range []tasks.Priority{tasks.PriorityDefault, tasks.PriorityCritical} {
		if got := queuedIDs(t, insp, tasks.QueueName(rds.Prefix, p)); got["inv-5"] != 1 {
			t.Errorf("queue %s holds %v, want inv-5 once", p, got)
		}
	}
}

func TestEnqueueOneMessageFromFlags(t *testing.T) {
	t.Parallel()
	rds := testredis.New(t)
	args := []string{"enqueue", "--id", "invoice-8812:due-1", "--touser", "oFLAG0000000000000000001",
		"--template-id", "TPL_DUE", "--data", "thing1=房租12月", "--data", "amount2=¥3200.00"}

	first := newTestEnv(t, redisVars(rds, nil))
	if err := first.run(context.Background(), args...); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	want := "enqueued task invoice-8812:due-1 on queue " + defaultQueue(rds.Prefix) + "\n"
	if first.stdout.String() != want {
		t.Errorf("output %q, want %q", first.stdout.String(), want)
	}

	again := newTestEnv(t, redisVars(rds, nil))
	if err := again.run(context.Background(), args...); err != nil {
		t.Fatalf("repeat enqueue: %v", err)
	}
	if !strings.HasPrefix(again.stdout.String(), `duplicate: id "invoice-8812:due-1"`) {
		t.Errorf("repeat output %q does not report the duplicate", again.stdout.String())
	}

	insp := newInspector(t)
	if got := queuedIDs(t, insp, defaultQueue(rds.Prefix)); len(got) != 1 {
		t.Fatalf("queue holds %v, want the one task", got)
	}
	info, err := insp.GetTaskInfo(defaultQueue(rds.Prefix), "invoice-8812:due-1")
	if err != nil {
		t.Fatal(err)
	}
	p, err := tasks.DecodePayload(info.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if p.ToUser != "oFLAG0000000000000000001" || p.Data["thing1"].Value != "房租12月" ||
		p.Data["amount2"].Value != "¥3200.00" {
		t.Errorf("queued payload is %+v", p)
	}
}

func TestEnqueueRejectsAnUnknownAppID(t *testing.T) {
	t.Parallel()
	rds := testredis.New(t)
	vars := redisVars(rds, map[string]string{"WECHAT_APPID": "wxknown0000000001"})
	flags := []string{"enqueue", "--appid", "wxother0000000002", "--touser", "oAPP1",
		"--template-id", "TPL_DUE", "--data", "thing1=x"}

	te := newTestEnv(t, vars)
	err := te.run(context.Background(), flags...)
	if err == nil || !strings.Contains(err.Error(), "appid") {
		t.Errorf("flags: err = %v, want one naming appid", err)
	}

	te = newTestEnv(t, vars)
	other := strings.Replace(payloadLine("app-1", "oAPP1"), `{`, `{"appid":"wxother0000000002",`, 1)
	te.stdin = other + "\n" + payloadLine("app-2", "oAPP2") + "\n"
	err = te.run(context.Background(), "enqueue")
	if code := exitCode(err, &bytes.Buffer{}); code != 1 {
		t.Errorf("lines: exit code %d, want 1", code)
	}
	if !strings.Contains(te.stdout.String(), "line 1: rejected: appid:") {
		t.Errorf("line 1 is not rejected for its appid:\n%s", te.stdout.String())
	}

	got := queuedIDs(t, newInspector(t), defaultQueue(rds.Prefix))
	if len(got) != 1 || got["app-2"] != 1 {
		t.Errorf("queue holds %v, want only app-2 (no appid, the one account)", got)
	}
}

func TestEnqueueWithoutInputOnATerminalExplains(t *testing.T) {
	t.Parallel()
	te := newTestEnv(t, nil)
	e := te.env()
	e.stdinIsTerminal = true
	err := run(context.Background(), []string{"enqueue"}, e)
	if err == nil || !strings.Contains(err.Error(), "nothing to enqueue") {
		t.Errorf("err = %v, want it to say there is nothing to enqueue", err)
	}
}

func TestEnqueueRefusesFlagsWithFile(t *testing.T) {
	t.Parallel()
	te := newTestEnv(t, nil)
	err := te.run(context.Background(), "enqueue", "--touser", "oX", "--file", "x.jsonl")
	if err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("err = %v, want flags and --file refused together", err)
	}
}
