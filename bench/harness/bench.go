package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/wechat/wechattest"
)

// sizes are the message counts of the bench scenarios.
type sizes struct {
	throughput int // per consumer run
	attribute  int // the MONITOR run
	latencyMul int // messages per unit of concurrency
	tokens     int
	rateSecs   int // seconds of sending per rate-limit run
	enqSeq     int
	enqPar     int
	enqFile    int
}

func sizesFor(smoke bool) sizes {
	if smoke {
		return sizes{throughput: 300, attribute: 100, latencyMul: 2, tokens: 300,
			rateSecs: 1, enqSeq: 200, enqPar: 500, enqFile: 1000}
	}
	return sizes{throughput: 10000, attribute: 1000, latencyMul: 6, tokens: 10000,
		rateSecs: 5, enqSeq: 2000, enqPar: 20000, enqFile: 100000}
}

// benchScenario is one part of the bench report.
type benchScenario struct {
	name string
	run  func(l *lab, ctx context.Context, o options, sz sizes) (string, error)
}

var benchScenarios = []benchScenario{
	{"throughput", (*lab).benchThroughput},
	{"latency", (*lab).benchLatency},
	{"tokens", (*lab).benchTokens},
	{"ratelimit", (*lab).benchRate},
	{"enqueue", (*lab).benchEnqueue},
}

func (l *lab) benchSuite(ctx context.Context, o options) (string, error) {
	var b strings.Builder
	sz := sizesFor(o.smoke)
	for _, sc := range benchScenarios {
		if o.only != "" && o.only != sc.name {
			continue
		}
		start := time.Now()
		fmt.Fprintf(os.Stderr, "harness: bench %s ...\n", sc.name)
		sec, err := sc.run(l, ctx, o, sz)
		if err != nil {
			return "", fmt.Errorf("%s: %w", sc.name, err)
		}
		b.WriteString(sec)
		fmt.Fprintf(&b, "\n_%s took %s._\n\n", sc.name, time.Since(start).Round(100*time.Millisecond))
	}
	return b.String(), nil
}

// runResult is what one consumer process did with a drained queue.
type runResult struct {
	rate       float64          // tasks/s
	cmds       map[string]int64 // commandstats delta
	memPerMsg  float64          // bytes of used_memory per queued message
	cpuPer1000 float64          // CPU seconds per 1,000 tasks
	rssPeakKB  int64
	delivered  int
	tokenCalls int
}

// consumerRun enqueues n messages on a fresh Redis, then starts procs
// consumers of kind (noop, naive or worker) and times the drain.
func (l *lab) consumerRun(ctx context.Context, kind string, n, procs, conc int,
	faults wechattest.Faults) (runResult, error) {
	var res runResult
	r, fake, err := l.fixture(ctx, false, faults)
	if err != nil {
		return res, err
	}
	defer r.close()
	defer fake.Close()

	if res.memPerMsg, err = enqueueMeasured(ctx, r, n); err != nil {
		return res, err
	}
	cs0, err := r.commandStats(ctx)
	if err != nil {
		return res, err
	}
	ps, err := l.startConsumers(kind, procs, r, fake, conc)
	if err != nil {
		return res, err
	}
	defer stopAll(ps)

	pr, err := watchDrain(ctx, r.rdb, n, 3*time.Minute)
	if err != nil {
		return res, fmt.Errorf("%s: %w; log: %s", kind, err, ps[0].tail())
	}
	cs1, err := r.commandStats(ctx)
	if err != nil {
		return res, err
	}
	res.rate, res.cmds = pr.rate(), diffStats(cs0, cs1, pr.polls)
	res.collectProcs(ps, n)
	st := fake.Stats()
	res.delivered, res.tokenCalls = st.Deliveries, st.TokenCalls
	return res, nil
}

// collectProcs reads CPU and peak RSS of the consumers before they stop.
func (res *runResult) collectProcs(ps []*proc, n int) {
	cpu := 0.0
	for _, p := range ps {
		cpu += cpuSeconds(p.pid())
		_, peak := rssKB(p.pid())
		res.rssPeakKB = max(res.rssPeakKB, peak)
	}
	res.cpuPer1000 = cpu / float64(n) * 1000
}

// fixture starts a private Redis and a fake WeChat.
func (l *lab) fixture(ctx context.Context, aof bool, faults wechattest.Faults) (
	*redisProc, *wechattest.Server, error) {
	r, err := l.startRedis(ctx, aof)
	if err != nil {
		return nil, nil, err
	}
	fake, err := startFake(wechattest.Config{Faults: faults, Seed: 1})
	if err != nil {
		r.close()
		return nil, nil, err
	}
	return r, fake, nil
}

// enqueueMeasured enqueues messages [0, n) with 16 goroutines and
// returns Redis's used_memory growth per message.
func enqueueMeasured(ctx context.Context, r *redisProc, n int) (float64, error) {
	m0, err := r.usedMemory(ctx)
	if err != nil {
		return 0, err
	}
	prod := newProducer(r)
	defer prod.Close()
	if err := enqueueRange(ctx, prod, 0, n, 16); err != nil {
		return 0, err
	}
	m1, err := r.usedMemory(ctx)
	return float64(m1-m0) / float64(n), err
}

func (l *lab) startConsumers(kind string, procs int, r *redisProc, fake *wechattest.Server,
	conc int) ([]*proc, error) {
	if kind == "worker" {
		return l.startWorkers(procs, workerEnv(r, fake, conc, nil))
	}
	p, err := l.startRef(kind, r, fake, conc)
	if err != nil {
		return nil, err
	}
	return []*proc{p}, nil
}

// diffStats is after-before per command, without the harness's own
// INFO, LLEN and ZCARD polls.
func diffStats(before, after map[string]int64, polls int) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 && k != "info" {
			out[k] = d
		}
	}
	for _, k := range []string{"llen", "zcard"} {
		out[k] -= 2 * int64(polls)
		if out[k] <= 0 {
			delete(out, k)
		}
	}
	return out
}

func total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
