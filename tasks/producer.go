package tasks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// ErrDuplicate is matched (errors.Is) by the error Enqueue returns when
// a task with the same id still exists in the queue.
var ErrDuplicate = errors.New("duplicate id")

// ProducerOptions configure a Producer. The zero value gives the same
// tasks as NewTask.
type ProducerOptions struct {
	// QueuePrefix names the queues; empty means DefaultQueuePrefix.
	QueuePrefix string
	// Rules validate every payload before it is enqueued.
	Rules Rules
	// MaxRetry is 0 for DefaultMaxRetry; negative means no retries.
	MaxRetry int
	// Timeout bounds one delivery attempt; 0 means DefaultTimeout.
	// asynq keeps whole seconds, so it is rounded up to one.
	Timeout time.Duration
	// Retention keeps delivered tasks, and their ids taken, for this
	// long; 0 means DefaultRetention and negative means not at all.
	Retention time.Duration
}

// settings resolves the zero values of o.
func (o ProducerOptions) settings() settings {
	s := defaultSettings()
	if o.QueuePrefix != "" {
		s.prefix = o.QueuePrefix
	}
	if o.MaxRetry != 0 {
		s.maxRetry = max(o.MaxRetry, 0)
	}
	if o.Timeout > 0 {
		s.timeout = (o.Timeout + time.Second - 1).Truncate(time.Second)
	}
	if o.Retention != 0 {
		s.retention = max(o.Retention, 0)
	}
	return s
}

// Producer validates payloads and enqueues them as send_template tasks.
// It is safe for concurrent use.
type Producer struct {
	client   *asynq.Client
	owned    bool
	rules    Rules
	settings settings
}

// NewProducer returns a Producer with its own connection to the Redis
// that r describes. Close releases it.
func NewProducer(r asynq.RedisConnOpt, o ProducerOptions) *Producer {
	p := NewProducerFromClient(asynq.NewClient(r), o)
	p.owned = true
	return p
}

// NewProducerFromClient returns a Producer that enqueues through c. The
// Producer never closes c.
func NewProducerFromClient(c *asynq.Client, o ProducerOptions) *Producer {
	return &Producer{client: c, rules: o.Rules, settings: o.settings()}
}

// Enqueue validates payload with the producer's Rules and enqueues it,
// with the producer's options followed by opts (see NewTask; the same
// Timeout rule applies). ctx bounds only the Redis call.
//
// An id makes the enqueue idempotent: while a task with that id exists
// in the queue, whether pending, scheduled, retrying, archived or
// completed within Retention, Enqueue refuses it with an error matching
// ErrDuplicate that names the id. The check is per queue, so the same id
// with another priority is a different task.
//
// A payload that fails validation returns an error holding a
// *ValidationError and never reaches Redis.
func (p *Producer) Enqueue(
	ctx context.Context, payload *Payload, opts ...asynq.Option,
) (*asynq.TaskInfo, error) {
	task, err := build(payload, p.rules, p.settings, time.Now(), opts)
	if err != nil {
		return nil, fmt.Errorf("enqueue: %w", err)
	}

	info, err := p.client.EnqueueContext(ctx, task)
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict):
		return nil, fmt.Errorf("enqueue id %q: %w", taskID(payload, opts), ErrDuplicate)
	case err != nil:
		return nil, fmt.Errorf("enqueue: %w", err)
	}
	return info, nil
}

// Close releases the Redis connection of a Producer made by
// NewProducer. For one made by NewProducerFromClient it does nothing.
func (p *Producer) Close() error {
	if !p.owned {
		return nil
	}
	if err := p.client.Close(); err != nil {
		return fmt.Errorf("close producer: %w", err)
	}
	return nil
}
