package worker

import (
	"errors"
	"time"

	"github.com/hibiken/asynq"
)

// permanentError archives the task at once: asynq sees SkipRetry through
// Unwrap, operators see only the reason in asynqmon.
type permanentError struct{ reason string }

func (e *permanentError) Error() string { return e.reason }

func (e *permanentError) Unwrap() error { return asynq.SkipRetry }

func permanent(reason string) error { return &permanentError{reason: reason} }

// DelayError asks for the task to run again after Delay without counting
// a failure: asynq keeps every retry for it (IsFailure is false) and the
// retry delay is Delay itself. Rate limits, quota waits and account stops
// use it, so a message delayed for hours still has all its retries.
type DelayError struct {
	Delay  time.Duration
	Reason string
}

func (e *DelayError) Error() string {
	return "waiting " + e.Delay.Round(time.Second).String() + ": " + e.Reason
}

// IsFailure is the asynq.Config.IsFailure of the worker: waits are not
// failures.
func IsFailure(err error) bool {
	var d *DelayError
	return !errors.As(err, &d)
}
