package tasks

import "time"

// TypeSendTemplate is the asynq task type of a template message send.
// asynq's ServeMux routes by longest prefix, so an incompatible future
// schema must get a type that does not begin with this one.
const TypeSendTemplate = "send_template"

// Priority picks the queue a task waits in. The zero value means
// PriorityDefault.
type Priority string

// The three priorities. The worker serves them with strict priority:
// critical is drained before default, default before low.
const (
	PriorityCritical Priority = "critical"
	PriorityDefault  Priority = "default"
	PriorityLow      Priority = "low"
)

// DefaultQueuePrefix starts the name of every wxnotify queue, so that
// queues read "wxnotify:critical", "wxnotify:default" and "wxnotify:low".
const DefaultQueuePrefix = "wxnotify"

// Defaults that NewTask and a Producer apply unless told otherwise.
const (
	// DefaultMaxRetry is how many times a failed send is retried before
	// it is archived. With the worker's default backoff (full jitter,
	// base 10 s, cap 1 h) 12 retries span about two hours on average and
	// four at most; asynq's own default of 25 spans weeks.
	DefaultMaxRetry = 12
	// DefaultTimeout bounds one delivery attempt. asynq stores timeouts
	// in whole seconds, so it must stay a whole number of seconds.
	DefaultTimeout = 60 * time.Second
	// DefaultRetention keeps a delivered task visible as completed, and
	// keeps its id taken, for this long after success.
	DefaultRetention = 24 * time.Hour
)

// QueueName returns the asynq queue for priority p under prefix: an
// empty prefix means DefaultQueuePrefix and an empty p means
// PriorityDefault. p is not checked; Validate rejects unknown
// priorities before a task is built.
func QueueName(prefix string, p Priority) string {
	if prefix == "" {
		prefix = DefaultQueuePrefix
	}
	if p == "" {
		p = PriorityDefault
	}
	return prefix + ":" + string(p)
}

// Queues returns the queues under prefix with their weights, ready for
// asynq.Config.Queues. With StrictPriority set the weights only order
// the queues; without it they are the share each queue gets.
func Queues(prefix string) map[string]int {
	return map[string]int{
		QueueName(prefix, PriorityCritical): 6,
		QueueName(prefix, PriorityDefault):  3,
		QueueName(prefix, PriorityLow):      1,
	}
}

// valid reports whether p is one of the three priorities or empty.
func (p Priority) valid() bool {
	switch p {
	case "", PriorityCritical, PriorityDefault, PriorityLow:
		return true
	}
	return false
}
