package worker

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
)

// Backoff defaults. With the tasks package's default of 12 retries the
// expected total wait is about two hours and the longest about four.
const (
	DefaultBackoffBase = 10 * time.Second
	DefaultBackoffCap  = time.Hour
)

// Backoff is exponential backoff with full jitter: the wait before retry
// n (counting from 0) is uniform in [0, min(Cap, Base·2^n)].
type Backoff struct {
	Base time.Duration
	Cap  time.Duration
}

// Delay returns the wait before retry n.
func (b Backoff) Delay(n int) time.Duration {
	base, limit := b.Base, b.Cap
	if base <= 0 {
		base = DefaultBackoffBase
	}
	if limit <= 0 {
		limit = DefaultBackoffCap
	}

	ceiling := limit
	if n < 40 && base<<n > 0 && base<<n < limit {
		ceiling = base << n
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// RetryDelay is the asynq.Config.RetryDelayFunc of the worker: a
// DelayError waits its own delay, every other error backs off.
func (b Backoff) RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var d *DelayError
	if errors.As(err, &d) {
		return d.Delay
	}
	return b.Delay(n)
}
