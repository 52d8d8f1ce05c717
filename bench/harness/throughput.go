package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/wxnotify/wxnotify/wechat/wechattest"
)

var consumerKinds = []string{"noop", "naive", "worker"}

var kindLabel = map[string]string{
	"noop":   "asynq, no-op handler",
	"naive":  "asynq, bare sender (POST with a fixed token)",
	"worker": "`wxnotify worker`",
}

// benchThroughput runs the no-op, the bare sender and the worker side by
// side, reps times, each on its own fresh Redis with the same queue of n
// messages, one process at concurrency 50.
func (l *lab) benchThroughput(ctx context.Context, o options, sz sizes) (string, error) {
	rates := map[string]series{}
	cpu := map[string]series{}
	var mem series
	last := map[string]runResult{}
	for rep := range o.reps {
		for _, kind := range consumerKinds {
			res, err := l.consumerRun(ctx, kind, sz.throughput, 1, 50, wechattest.Faults{})
			if err != nil {
				return "", err
			}
			if kind != "noop" && res.delivered != sz.throughput {
				return "", fmt.Errorf("%s delivered %d of %d", kind, res.delivered, sz.throughput)
			}
			fmt.Fprintf(os.Stderr, "harness:   rep %d %-6s %8.0f msgs/s\n", rep+1, kind, res.rate)
			rates[kind] = append(rates[kind], res.rate)
			cpu[kind] = append(cpu[kind], res.cpuPer1000)
			mem = append(mem, res.memPerMsg)
			last[kind] = res
		}
	}
	attr, err := l.attribute(ctx, sz.attribute)
	if err != nil {
		return "", err
	}
	return throughputReport(o, sz, rates, cpu, mem, last, attr), nil
}

func throughputReport(o options, sz sizes, rates, cpu map[string]series, mem series,
	last map[string]runResult, attr attribution) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Throughput against the ceiling\n\n")
	fmt.Fprintf(&b, "Command: `%s -only throughput`. One consumer process at concurrency 50 "+
		"drains a queue of %d messages (about 300 B of payload each, enqueued before it "+
		"starts) on a fresh private Redis; the fake WeChat answers at once. The rate is "+
		"counted from the first task done to the last (the queue's pending+active lists "+
		"polled every 10 ms), so process start-up is left out. The three run in turn, "+
		"runs: %d, side by side.\n\n", cmdLine(o), sz.throughput, o.reps)
	b.WriteString("| consumer | msgs/s: median (min–max) | every run | CPU s per 1,000 |\n")
	b.WriteString("| --- | --- | --- | --- |\n")
	for _, k := range consumerKinds {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", kindLabel[k], rates[k].spread("%.0f"),
			rates[k].all("%.0f"), cpu[k].spread("%.3f"))
	}
	ratio := ratios(rates["worker"], rates["naive"])
	fmt.Fprintf(&b, "\nRatio worker / bare sender, run by run: %s; median %.2f. "+
		"Target ≥ 0.80: %s. Worker / no-op: %s.\n\n", ratio.all("%.2f"), ratio.median(),
		verdict(ratio.median() >= 0.8), ratios(rates["worker"], rates["noop"]).spread("%.2f"))
	b.WriteString(commandTable(last, sz.throughput))
	b.WriteString(attr.report(sz.attribute))
	b.WriteString(gapNote(cpu, last, attr, sz))
	fmt.Fprintf(&b, "\nRedis memory per queued message (used_memory growth over the %d "+
		"enqueues, producer with its 24 h retention and task id): %s bytes.\n\n",
		sz.throughput, mem.spread("%.0f"))
	return b.String()
}

// commandTable shows the commandstats deltas per task of the last run.
func commandTable(last map[string]runResult, n int) string {
	var b strings.Builder
	b.WriteString("Redis commands executed per task (INFO commandstats before and after the " +
		"drain, over all clients; commands run inside Lua scripts count under their own " +
		"names, so evalsha is the scripts' round trips):\n\n")
	names := map[string]bool{}
	for _, r := range last {
		for k := range r.cmds {
			names[k] = true
		}
	}
	keys := slices.Sorted(maps.Keys(names))
	b.WriteString("| command | no-op | bare sender | worker |\n| --- | --- | --- | --- |\n")
	for _, k := range append(keys, "total") {
		fmt.Fprintf(&b, "| %s |", k)
		for _, kind := range consumerKinds {
			v := last[kind].cmds[k]
			if k == "total" {
				v = total(last[kind].cmds)
			}
			fmt.Fprintf(&b, " %.2f |", float64(v)/float64(n))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// cmdLine is the harness command that reproduces a figure.
func cmdLine(o options) string {
	mode := "bench"
	if o.smoke {
		mode = "smoke"
	}
	return "go run ./bench/harness " + mode
}

// gapNote says where the worker's time over the bare sender goes.
func gapNote(cpu map[string]series, last map[string]runResult, attr attribution, sz sizes) string {
	extraTrips := per(attr.trips[catAdmission]+attr.trips[catSent]+attr.trips[catResult]+
		attr.trips[catToken], sz.attribute)
	cmdsW := float64(total(last["worker"].cmds)) / float64(sz.throughput)
	cmdsN := float64(total(last["naive"].cmds)) / float64(sz.throughput)
	return fmt.Sprintf("\nWhere the gap to the bare sender goes: the worker makes %.2f more "+
		"Redis round trips per task (admission script %.2f, sent record %.2f, result "+
		"%.2f, token cache %.2f) and makes Redis execute %.2f commands per task against "+
		"%.2f; its own process spends %.3f CPU-seconds per 1,000 tasks against %.3f "+
		"(payload validation, the wechat client, logging set-up, the extra Redis "+
		"calls). The consumer, Redis and the fake share 2 cores, so every extra round "+
		"trip costs CPU on the same machine twice: in the worker and in Redis.\n",
		extraTrips, per(attr.trips[catAdmission], sz.attribute), per(attr.trips[catSent], sz.attribute),
		per(attr.trips[catResult], sz.attribute), per(attr.trips[catToken], sz.attribute),
		cmdsW, cmdsN, cpu["worker"].median(), cpu["naive"].median())
}
