package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/wxnotify/wxnotify/tasks"
)

// maxLineBytes bounds one JSON line. A longer line stops the run with an
// error naming its number (lines before it are enqueued), rather than
// being read into memory whole.
const maxLineBytes = 1 << 20

// dataFlags collects repeated --data key=value flags.
type dataFlags map[string]tasks.Value

func (d dataFlags) String() string { return fmt.Sprint(map[string]tasks.Value(d)) }

func (d dataFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not key=value", s)
	}
	d[k] = tasks.Value{Value: v}
	return nil
}

func runEnqueue(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("enqueue", "Queue one message from flags, or many from JSON lines "+
		"(one payload per line) given with --file or on stdin.\n\n"+
		"Examples:\n"+
		"  wxnotify enqueue --touser oUSER --template-id TPL --data thing1=房租 --data amount2=¥3200.00\n"+
		"  wxnotify enqueue --file reminders.jsonl\n"+
		"  producer | wxnotify enqueue", e)
	ov := newOverrides(fs)
	ov.add("redis-url", "REDIS_URL", "Redis URL")
	ov.add("queue-prefix", "QUEUE_PREFIX", "queue name prefix")
	file := fs.String("file", "", "read JSON lines from this file (- for stdin)")
	parallel := fs.Int("parallel", 16, "enqueue this many lines at once")
	var p tasks.Payload
	data := dataFlags{}
	fs.StringVar(&p.ToUser, "touser", "", "recipient openid")
	fs.StringVar(&p.TemplateID, "template-id", "", "template id")
	fs.StringVar(&p.URL, "url", "", "link opened on tap")
	fs.StringVar(&p.AppID, "appid", "", "account that sends it")
	fs.StringVar(&p.ID, "id", "", "idempotency key, e.g. invoice-8812:due-1")
	fs.StringVar(&p.ClientMsgID, "client-msg-id", "", "WeChat client_msg_id (default: derived from the id)")
	priority := fs.String("priority", "", "critical, default or low")
	fs.Var(data, "data", "template field as key=value (repeat for each field)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q; payloads go in --file or on stdin", fs.Arg(0))
	}

	cfg, err := loadConfig(ov.getenv(e.getenv), false)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if err := pingRedis(ctx, cfg); err != nil {
		return err
	}
	prod := tasks.NewProducer(cfg.RedisOpt, tasks.ProducerOptions{
		QueuePrefix: cfg.QueuePrefix,
		Rules:       tasks.Rules{AppIDs: cfg.appIDs()},
	})
	defer prod.Close()

	if p.ToUser != "" || p.TemplateID != "" || len(data) > 0 {
		if *file != "" {
			return errors.New("give either message flags or --file, not both")
		}
		p.Data, p.Priority = data, tasks.Priority(*priority)
		return enqueueOne(ctx, prod, &p, e.stdout)
	}

	in, name, err := openLines(*file, e)
	if err != nil {
		return err
	}
	defer in.Close()
	check := &lineChecker{
		rules:  tasks.Rules{AppIDs: cfg.appIDs()},
		prefix: cfg.QueuePrefix,
		seen:   map[string]int{},
	}
	sum, err := enqueueLines(ctx, prod, check, in, *parallel, e.stdout)
	fmt.Fprintf(e.stdout, "%s: enqueued %d, duplicates %d, rejected %d\n",
		name, sum.enqueued, sum.duplicates, sum.rejected)
	if err != nil {
		return err
	}
	if sum.rejected > 0 {
		return exitError{code: 1}
	}
	return nil
}

func enqueueOne(ctx context.Context, prod *tasks.Producer, p *tasks.Payload, w io.Writer) error {
	info, err := prod.Enqueue(ctx, p)
	switch {
	case errors.Is(err, tasks.ErrDuplicate):
		fmt.Fprintf(w, "duplicate: id %q is already queued or was sent; nothing enqueued\n", p.ID)
		return nil
	case err != nil:
		return err // the producer's error already reads "enqueue ..."
	}
	fmt.Fprintf(w, "enqueued task %s on queue %s\n", info.ID, info.Queue)
	return nil
}

func openLines(file string, e *env) (io.ReadCloser, string, error) {
	switch file {
	case "", "-":
		if file == "" && e.stdinIsTerminal {
			return nil, "", errors.New("nothing to enqueue: give --touser/--template-id/--data, " +
				"--file, or pipe JSON lines to stdin")
		}
		return io.NopCloser(e.stdin), "stdin", nil
	default:
		f, err := os.Open(file)
		if err != nil {
			return nil, "", fmt.Errorf("--file: %w", err)
		}
		return f, file, nil
	}
}

type enqueueSummary struct {
	enqueued, duplicates, rejected int
}

// line is one JSON line waiting to be enqueued.
type line struct {
	n int
	p *tasks.Payload
}

// lineChecker parses and validates JSON lines in file order, so that
// every problem is reported with its line number and a repeated id is
// always reported at its second line, never at its first.
type lineChecker struct {
	rules  tasks.Rules
	prefix string
	// seen maps a task's queue and id to the line that first used them.
	seen map[string]int
}

// verdict is what a lineChecker decided about one line.
type verdict int

const (
	accepted verdict = iota
	rejected
	repeated
)

// check returns the payload of line n, or why it is not to be enqueued.
func (c *lineChecker) check(n int, text string) (*tasks.Payload, verdict, string) {
	p, err := tasks.ParsePayload([]byte(text))
	if err == nil {
		err = c.rules.Validate(p)
	}
	if err != nil {
		return nil, rejected, fmt.Sprintf("line %d: rejected: %v", n, err)
	}
	if p.ID == "" {
		return p, accepted, ""
	}

	key := tasks.QueueName(c.prefix, p.Priority) + "\x00" + p.ID
	if first, ok := c.seen[key]; ok {
		return nil, repeated, fmt.Sprintf("line %d: duplicate id %q, same as line %d; skipped",
			n, p.ID, first)
	}
	c.seen[key] = n
	return p, accepted, ""
}

// tally collects the outcome of every line; enqueue goroutines share it.
type tally struct {
	mu   sync.Mutex
	w    io.Writer
	sum  enqueueSummary
	fail error // the first Redis failure; it stops the run
}

// note counts one line under count and prints msg for it.
func (t *tally) note(count *int, msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	*count++
	fmt.Fprintln(t.w, msg)
}

// record counts the result of enqueueing line l.
func (t *tally) record(l line, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case err == nil:
		t.sum.enqueued++
	case errors.Is(err, tasks.ErrDuplicate):
		t.sum.duplicates++
		fmt.Fprintf(t.w, "line %d: duplicate id %q, already queued or sent; skipped\n", l.n, l.p.ID)
	case isValidation(err):
		t.sum.rejected++
		fmt.Fprintf(t.w, "line %d: rejected: %v\n", l.n, validationOf(err))
	case t.fail == nil:
		t.fail = fmt.Errorf("line %d: %w (lines from here on may not be queued)", l.n, err)
	}
}

func (t *tally) failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fail != nil
}

// enqueueLines checks every line in order (so a bad line is reported at
// once with its number), then enqueues valid ones with up to parallel
// Redis calls in flight. A Redis failure stops the run: later lines are
// not enqueued, and the error says from which line to resume.
func enqueueLines(ctx context.Context, prod *tasks.Producer, check *lineChecker, r io.Reader,
	parallel int, w io.Writer) (enqueueSummary, error) {
	t := &tally{w: w}
	work := make(chan line)
	var wg sync.WaitGroup
	for range max(parallel, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range work {
				_, err := prod.Enqueue(ctx, l.p)
				t.record(l, err)
			}
		}()
	}

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxLineBytes)
	n := 0
	for sc.Scan() {
		n++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		p, v, msg := check.check(n, text)
		if v == rejected {
			t.note(&t.sum.rejected, msg)
			continue
		}
		if v == repeated {
			t.note(&t.sum.duplicates, msg)
			continue
		}
		if t.failed() || ctx.Err() != nil {
			break
		}
		work <- line{n: n, p: p}
	}
	close(work)
	wg.Wait()

	if err := sc.Err(); err != nil && t.fail == nil {
		t.fail = fmt.Errorf("line %d: read: %w", n+1, err)
	}
	if t.fail == nil && ctx.Err() != nil {
		t.fail = ctx.Err()
	}
	return t.sum, t.fail
}

func isValidation(err error) bool {
	return validationOf(err) != nil
}

// validationOf returns the *tasks.ValidationError in err's chain, or nil.
func validationOf(err error) *tasks.ValidationError {
	var ve *tasks.ValidationError
	if errors.As(err, &ve) {
		return ve
	}
	return nil
}
