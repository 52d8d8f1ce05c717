package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wxnotify/wxnotify/wechat/wechattest"
)

// chaosResult is what became of a scenario's messages.
type chaosResult struct {
	enqueued, delivered, duplicated, suppressed int
	archived, explained, lost                   int
	reasons                                     map[string]int // archive reason -> tasks
	expect                                      map[string]string
	note                                        string
	took                                        time.Duration
}

func (r chaosResult) ok() bool {
	return r.lost == 0 && r.duplicated == 0 && r.explained == r.archived
}

func (r chaosResult) summary() string {
	return fmt.Sprintf("enqueued %d, delivered %d, duplicated %d, lost %d, archived %d "+
		"(%d explained) in %s", r.enqueued, r.delivered, r.duplicated, r.lost, r.archived,
		r.explained, r.took.Round(100*time.Millisecond))
}

// perRecipient counts deliveries per touser; every message has its own.
func perRecipient(ds []wechattest.Delivery) map[string]int {
	m := map[string]int{}
	for _, d := range ds {
		m[d.ToUser]++
	}
	return m
}

// count fills in deliveries from the fake and archives from the queue.
func (r chaosResult) count(insp *asynq.Inspector, cc chaosCase, fake *wechattest.Server) (
	chaosResult, error) {
	per := perRecipient(fake.Deliveries())
	for _, n := range per {
		r.delivered++
		r.duplicated += n - 1
	}
	r.suppressed = fake.Stats().DuplicatesSuppressed

	archived, err := listArchived(insp)
	if err != nil {
		return r, err
	}
	r.reasons = map[string]int{}
	for _, t := range archived {
		r.archived++
		r.reasons[shortReason(t.LastErr)]++
		if want, ok := r.expect[t.ID]; ok && strings.Contains(t.LastErr, want) {
			r.explained++
		}
	}
	r.lost = r.enqueued - r.delivered - r.archived
	return r, nil
}

func listArchived(insp *asynq.Inspector) ([]*asynq.TaskInfo, error) {
	var all []*asynq.TaskInfo
	for page := 1; ; page++ {
		ts, err := insp.ListArchivedTasks(defaultQueue, asynq.PageSize(500), asynq.Page(page))
		if err != nil {
			return nil, fmt.Errorf("list archived: %w", err)
		}
		all = append(all, ts...)
		if len(ts) < 500 {
			return all, nil
		}
	}
}

// shortReason keeps the kind of an archive reason and drops the detail
// that differs per task (rids, values).
func shortReason(s string) string {
	s, _, _ = strings.Cut(s, " rid:")
	if i := strings.Index(s, ": "); i >= 0 && strings.HasPrefix(s, "payload cannot be decoded") {
		s = s[:i]
	}
	if len(s) > 90 {
		s = s[:90] + "…"
	}
	return strings.ReplaceAll(s, "|", "/")
}

func chaosReport(o options, cases []chaosCase, results []chaosResult) (string, int, error) {
	var b strings.Builder
	mode := "chaos"
	if o.smoke {
		mode = "smoke"
	}
	fmt.Fprintf(&b, "### Fault suite\n\nCommand: `go run ./bench/harness %s` (one scenario: "+
		"`-only NAME`). Every scenario has its own private redis-server, its own fake "+
		"WeChat and 2 `wxnotify worker` processes at concurrency 50, with the waits "+
		"shortened: %s. Valid messages go through `tasks.Producer`, each to a recipient "+
		"of its own, so a delivery at the fake names its task. *Duplicated* counts "+
		"recipients the fake delivered to more than once; *resends caught* are sends the "+
		"fake answered from its client_msg_id memory instead of delivering again; *lost* "+
		"is enqueued − delivered − archived once the queue is empty (or the time limit "+
		"passed); an archive is *explained* when its reason names the fault planted in "+
		"that task.\n\n", mode, envList(chaosEnv))
	b.WriteString("| scenario | fault | enqueued | delivered | duplicated | resends caught | " +
		"lost | archived (explained) | archive reasons | took | target |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	failed := 0
	for i, c := range cases {
		r := results[i]
		if !r.ok() {
			failed++
		}
		what := c.what
		if r.note != "" {
			what += "; " + r.note
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d | %d (%d) | %s | %s | %s |\n",
			c.name, what, r.enqueued, r.delivered, r.duplicated, r.suppressed, r.lost,
			r.archived, r.explained, reasonList(r.reasons), r.took.Round(100*time.Millisecond),
			verdict(r.ok()))
	}
	fmt.Fprintf(&b, "\nTarget: lost 0, duplicated 0, every archive explained. %d of %d "+
		"scenarios met it.\n", len(cases)-failed, len(cases))
	if o.smoke {
		b.WriteString("\nThe smoke run leaves out sigkill and redis-restart: asynq " +
			"recovers a killed worker's tasks only after their lease expires (about a " +
			"minute), which is for `make chaos`.\n")
	}
	return b.String(), failed, nil
}

func reasonList(m map[string]int) string {
	if len(m) == 0 {
		return "—"
	}
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d× `%s`", m[k], k)
	}
	return strings.Join(parts, "; ")
}

func envList(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = "`" + k + "=" + m[k] + "`"
	}
	return strings.Join(parts, ", ")
}
