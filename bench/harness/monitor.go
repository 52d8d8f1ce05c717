package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wxnotify/wxnotify/wechat/wechattest"
)

// Categories of Redis work a worker does per task.
const (
	catAsynqTask = "asynq per task: dequeue, complete"
	catAsynqBg   = "asynq background: heartbeat, lease, forwarder, recoverer, stats"
	catAdmission = "wxnotify admission script: sent check, stops, rate limiter"
	catSent      = "wxnotify sent record (SET)"
	catResult    = "task result (HSET, asynq ResultWriter)"
	catToken     = "token cache"
	catOther     = "other (connection set-up, pings)"
)

var categories = []string{catAsynqTask, catAsynqBg, catAdmission, catSent, catResult,
	catToken, catOther}

// attribution counts, per category, round trips (commands on the wire)
// and commands executed (wire plus those run inside its Lua scripts).
type attribution struct {
	trips, execs map[string]int
}

// attribute runs one worker over n messages with redis-cli MONITOR
// recording every command, then sorts the commands by what issued them.
func (l *lab) attribute(ctx context.Context, n int) (attribution, error) {
	r, fake, err := l.fixture(ctx, false, wechattest.Faults{})
	if err != nil {
		return attribution{}, err
	}
	defer r.close()
	defer fake.Close()
	if _, err := enqueueMeasured(ctx, r, n); err != nil {
		return attribution{}, err
	}
	mon, err := l.spawn("monitor", "redis-cli", []string{"-p", strconv.Itoa(r.port), "monitor"}, nil)
	if err != nil {
		return attribution{}, err
	}
	time.Sleep(200 * time.Millisecond)

	ps, err := l.startWorkers(1, workerEnv(r, fake, 50, nil))
	if err != nil {
		return attribution{}, err
	}
	_, err = watchDrain(ctx, r.rdb, n, 2*time.Minute)
	stopAll(ps)
	mon.stop(syscall.SIGTERM, 5*time.Second)
	if err != nil {
		return attribution{}, err
	}
	return parseMonitor(mon.log)
}

func parseMonitor(path string) (attribution, error) {
	a := attribution{trips: map[string]int{}, execs: map[string]int{}}
	f, err := os.Open(path)
	if err != nil {
		return a, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	cur := catOther
	for sc.Scan() {
		origin, args := monitorLine(sc.Text())
		if len(args) == 0 {
			continue
		}
		if origin == "lua" {
			a.execs[cur]++
			continue
		}
		cmd := strings.ToLower(args[0])
		if cmd == "llen" || cmd == "zcard" || cmd == "info" {
			continue // the harness's own polls
		}
		cur = classify(cmd, args)
		a.trips[cur]++
		a.execs[cur]++
	}
	return a, sc.Err()
}

// classify names the category of a command sent on the wire.
func classify(cmd string, args []string) string {
	key := ""
	switch {
	case (cmd == "evalsha" || cmd == "eval") && len(args) > 3:
		key = args[3]
	case len(args) > 1:
		key = args[1]
	}
	switch {
	case strings.Contains(key, ":sent:") && strings.HasPrefix(cmd, "eval"):
		return catAdmission
	case strings.Contains(key, ":sent:") && cmd == "set":
		return catSent
	case cmd == "hset" && len(args) > 2 && args[2] == "result":
		return catResult
	case strings.Contains(key, "token"):
		return catToken
	case strings.HasPrefix(key, "asynq:") &&
		(strings.HasSuffix(key, ":pending") || strings.HasSuffix(key, ":active")):
		return catAsynqTask
	case strings.HasPrefix(key, "asynq:"):
		return catAsynqBg
	}
	return catOther
}

// monitorLine splits `ts [db origin] "cmd" "arg" ...` into the origin
// ("lua" for commands run by a script) and the unquoted words.
func monitorLine(line string) (origin string, args []string) {
	open := strings.IndexByte(line, '[')
	end := strings.IndexByte(line, ']')
	if open < 0 || end < open {
		return "", nil
	}
	if f := strings.Fields(line[open+1 : end]); len(f) == 2 {
		origin = f[1]
	}
	rest := line[end+1:]
	for len(args) < 4 {
		i := strings.IndexByte(rest, '"')
		if i < 0 {
			break
		}
		word, n := unquote(rest[i+1:])
		args = append(args, word)
		rest = rest[i+1+n:]
	}
	return origin, args
}

// unquote reads a MONITOR word up to its closing quote; n is how many
// bytes it used, the quote included.
func unquote(s string) (string, int) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), i + 1
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), len(s)
}

func (a attribution) report(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nWhere the Redis work goes, per delivered task (a separate run of one "+
		"worker over %d messages with `redis-cli monitor` recording every command; a "+
		"command sent by a client is a round trip, the commands a script runs are "+
		"attributed to that script; background loops are spread over the run's tasks):\n\n", n)
	b.WriteString("| issued by | round trips | commands executed |\n| --- | --- | --- |\n")
	var trips, execs int
	for _, c := range categories {
		trips, execs = trips+a.trips[c], execs+a.execs[c]
		fmt.Fprintf(&b, "| %s | %.2f | %.2f |\n", c, per(a.trips[c], n), per(a.execs[c], n))
	}
	fmt.Fprintf(&b, "| **total** | %.2f | %.2f |\n", per(trips, n), per(execs, n))
	return b.String()
}

func per(v, n int) float64 { return float64(v) / float64(n) }
