package tasks

import (
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// NewTask validates p with the zero Rules and builds its task. The task
// carries these options, which opts given here or to Enqueue override:
//
//   - Queue(QueueName(DefaultQueuePrefix, p.Priority))
//   - MaxRetry(DefaultMaxRetry), Timeout(DefaultTimeout) and
//     Retention(DefaultRetention)
//   - TaskID(p.ID), when p.ID is set
//
// The encoded payload gets EnqueuedAt set to now when p's is zero; p
// itself is not modified. A Timeout option that is negative or not a
// whole number of seconds is refused: asynq keeps whole seconds, and one
// under a second would silently become asynq's 30 minute default.
func NewTask(p *Payload, opts ...asynq.Option) (*asynq.Task, error) {
	task, err := build(p, Rules{}, defaultSettings(), time.Now(), opts)
	if err != nil {
		return nil, fmt.Errorf("new task: %w", err)
	}
	return task, nil
}

// settings are the task options a NewTask or a Producer applies.
type settings struct {
	prefix    string
	maxRetry  int
	timeout   time.Duration
	retention time.Duration
}

func defaultSettings() settings {
	return settings{
		prefix:    DefaultQueuePrefix,
		maxRetry:  DefaultMaxRetry,
		timeout:   DefaultTimeout,
		retention: DefaultRetention,
	}
}

// options returns the asynq options for payload p.
func (s settings) options(p *Payload) []asynq.Option {
	opts := []asynq.Option{
		asynq.Queue(QueueName(s.prefix, p.Priority)),
		asynq.MaxRetry(s.maxRetry),
		asynq.Timeout(s.timeout),
		asynq.Retention(s.retention),
	}
	if p.ID != "" {
		opts = append(opts, asynq.TaskID(p.ID))
	}
	return opts
}

// build stamps a copy of p with now if needed, validates it with r and
// returns the task, with s's options followed by extra.
func build(
	p *Payload, r Rules, s settings, now time.Time, extra []asynq.Option,
) (*asynq.Task, error) {
	if p == nil {
		return nil, &ValidationError{Errors: []FieldError{{"payload", "required"}}}
	}
	if err := checkTimeouts(extra); err != nil {
		return nil, err
	}

	stamped := *p
	if stamped.EnqueuedAt.IsZero() {
		stamped.EnqueuedAt = now.UTC()
	}
	b, err := stamped.Marshal()
	if err != nil {
		return nil, err
	}

	if err := r.validate(&stamped, len(b)); err != nil {
		return nil, err
	}
	opts := append(s.options(&stamped), extra...)
	return asynq.NewTask(TypeSendTemplate, b, opts...), nil
}

// errTimeout explains why a Timeout option was refused.
var errTimeout = errors.New("asynq keeps whole seconds only")

// checkTimeouts refuses Timeout options asynq would not store as given.
// Timeout(0) stays allowed: it means "no timeout, use the deadline".
func checkTimeouts(opts []asynq.Option) error {
	for _, o := range opts {
		if o.Type() != asynq.TimeoutOpt {
			continue
		}
		d, _ := o.Value().(time.Duration)
		if d < 0 || d%time.Second != 0 {
			return fmt.Errorf("option timeout %v: %w", d, errTimeout)
		}
	}
	return nil
}

// taskID returns the id a task built from p with opts will get, or ""
// when asynq is left to choose one.
func taskID(p *Payload, opts []asynq.Option) string {
	id := p.ID
	for _, o := range opts {
		if o.Type() == asynq.TaskIDOpt {
			id, _ = o.Value().(string)
		}
	}
	return id
}
