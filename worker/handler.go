package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/wxnotify/wxnotify/tasks"
	"github.com/wxnotify/wxnotify/wechat"
)

// Sender delivers one template message. *wechat.Client is the real one.
type Sender interface {
	SendTemplate(ctx context.Context, msg *wechat.TemplateMessage) (int64, error)
}

// Account is one WeChat service account the worker sends for.
type Account struct {
	AppID  string
	Sender Sender
	// Rate limits the account's sends across every worker process; the
	// zero Rate is no limit.
	Rate Rate
}

// Result is what a completed task holds as its result, visible in
// asynqmon and through the inspector for the task's retention.
type Result struct {
	MsgID       int64     `json:"msgid"`
	AppID       string    `json:"appid"`
	ClientMsgID string    `json:"client_msg_id"`
	SentAt      time.Time `json:"sent_at"`
	// Replayed is true when the task ran again after its message had
	// already been sent (a crash or a shutdown requeue) and the worker
	// completed it from its sent record instead of sending twice.
	Replayed bool `json:"replayed,omitempty"`
}

// Handler processes send_template tasks.
type Handler struct {
	accounts     map[string]Account
	defaultAppID string
	rules        tasks.Rules
	ctl          *control
	policy       Policy
	log          zerolog.Logger
	now          func() time.Time
}

// outcome is what one run of a task did; it becomes the one log line of
// that run.
type outcome struct {
	taskID, queue string
	appID, openID string
	templateID    string
	attempt       int
	maxRetry      int
	decision      Decision
	msgID         int64
	replayed      bool
	err           error
	start         time.Time
}

// ProcessTask implements asynq.Handler.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	o := h.begin(ctx)
	err := h.process(ctx, t, o)
	o.err = err
	h.report(o)
	return err
}

func (h *Handler) begin(ctx context.Context) *outcome {
	o := &outcome{start: h.now()}
	o.taskID, _ = asynq.GetTaskID(ctx)
	o.queue, _ = asynq.GetQueueName(ctx)
	retried, _ := asynq.GetRetryCount(ctx)
	o.attempt = retried + 1
	o.maxRetry, _ = asynq.GetMaxRetry(ctx)
	return o
}

func (h *Handler) process(ctx context.Context, t *asynq.Task, o *outcome) error {
	p, err := tasks.DecodePayload(t.Payload())
	if err != nil {
		return h.reject(o, "payload cannot be decoded: "+err.Error())
	}
	o.appID, o.openID, o.templateID = p.AppID, p.ToUser, p.TemplateID

	if err := h.rules.ValidateEncoded(p, t.Payload()); err != nil {
		return h.reject(o, "invalid payload: "+err.Error())
	}
	acct, err := h.account(p.AppID)
	if err != nil {
		return h.reject(o, err.Error())
	}
	o.appID = acct.AppID

	if err := h.checkAge(p); err != nil {
		return h.reject(o, err.Error())
	}

	msg := toMessage(p, clientMsgID(p, o.taskID))
	adm, err := h.reserve(ctx, acct, o)
	if err != nil {
		return err
	}
	if done, err := h.admitted(ctx, t, o, adm, msg.ClientMsgID); done {
		return err
	}

	msgID, err := acct.Sender.SendTemplate(ctx, msg)
	o.decision = Classify(err)
	if o.decision.Action == Delivered {
		o.msgID = msgID
		h.endProbe(ctx, o, adm.probe, true)
		return h.complete(ctx, t, o, msg.ClientMsgID)
	}
	return h.failed(ctx, o, adm.probe, err)
}

// admitted acts on the admission answer; done is true when the task must
// not be sent now, and err is then what asynq should do with it.
func (h *Handler) admitted(ctx context.Context, t *asynq.Task, o *outcome, adm admission,
	clientMsgID string) (done bool, err error) {
	switch {
	case adm.sent:
		o.decision = Decision{Action: Delivered}
		o.msgID, o.replayed = adm.sentMsgID, true
		return true, h.writeResult(t, o, clientMsgID)
	case adm.stopped != nil:
		rec := adm.stopped
		o.decision = Decision{Action: actionOfStop(rec.Kind), Code: rec.Code, Reason: rec.Reason}
		tpl := ""
		if rec.Kind == stopTemplate {
			tpl = o.templateID
		}
		until := rec.until()
		return true, h.waitUntil(until, stopReason(o.appID, tpl, rec.Kind, until, rec.Reason))
	case adm.wait > 0:
		// Come back while the slot it wanted is still ahead, so that the
		// reserved slots never run dry while parked tasks sleep.
		o.decision = Decision{Action: SlowAccount, Reason: "rate limit"}
		horizon := h.ctl.horizon
		return true, &DelayError{Delay: max(adm.wait-horizon/2, 100*time.Millisecond) + jitter(horizon/4),
			Reason: "account " + o.appID + " is at its rate limit"}
	}
	return false, nil
}

// lateTolerance is how late a send may wake for its rate slot and still
// use it. A later wake-up (the process stalled) gives the slot up and asks
// again, so a stalled process never releases a burst of overdue sends.
const lateTolerance = 20 * time.Millisecond

// reserve runs the admission check and sleeps until the rate slot it
// reserved.
func (h *Handler) reserve(ctx context.Context, acct Account, o *outcome) (admission, error) {
	for try := 0; ; try++ {
		adm, err := h.ctl.admit(ctx, acct.AppID, o.taskID, o.templateID, acct.Rate)
		if err != nil {
			o.decision = Decision{Action: Retry, Reason: "redis unavailable for the admission check"}
			return adm, err
		}
		if adm.sleep <= 0 {
			return adm, nil
		}

		due := time.Now().Add(adm.sleep)
		select {
		case <-ctx.Done():
			h.endProbe(ctx, o, adm.probe, false)
			o.decision = Decision{Action: Retry, Reason: "stopped while waiting for a rate slot"}
			return adm, ctx.Err()
		case <-time.After(adm.sleep):
		}
		if time.Since(due) <= lateTolerance || try == 2 {
			adm.sleep = 0
			return adm, nil
		}
		h.endProbe(ctx, o, adm.probe, false)
	}
}

// checkAge refuses a message older than the policy's MaxAge: it could
// never be sent in time to matter.
func (h *Handler) checkAge(p *tasks.Payload) error {
	if p.EnqueuedAt.IsZero() || h.policy.MaxAge <= 0 {
		return nil
	}
	if age := h.now().Sub(p.EnqueuedAt); age > h.policy.MaxAge {
		return fmt.Errorf("too old to send: enqueued %s ago (at %s), over the maximum age of %s",
			age.Round(time.Second), p.EnqueuedAt.UTC().Format(time.RFC3339), h.policy.MaxAge)
	}
	return nil
}

// waitUntil asks asynq to run the task again shortly after until, spread
// over a few seconds so that a fleet of waiting tasks does not wake at
// once. Waiting consumes no retry.
func (h *Handler) waitUntil(until time.Time, reason string) error {
	d := max(until.Sub(h.now()), 0)
	return &DelayError{Delay: d + time.Second + jitter(min(5*time.Second, d/10+time.Second)), Reason: reason}
}

// endProbe ends the probe a send after a stop carried: a send WeChat
// answered for the message (delivered or not) proves the account works
// again; one without an answer lets another task probe.
func (h *Handler) endProbe(ctx context.Context, o *outcome, probe, accountWorks bool) {
	if !probe {
		return
	}
	if !accountWorks {
		h.ctl.releaseProbe(ctx, o.appID)
		return
	}
	resumed, err := h.ctl.resume(context.WithoutCancel(ctx), o.appID)
	if err != nil {
		h.log.Warn().Err(err).Str("appid", o.appID).Msg("could not clear the account stop")
		return
	}
	if resumed {
		h.log.Warn().Str("appid", o.appID).Str("task_id", o.taskID).
			Msg("account resumed: a probe send got through, sending again")
	}
}

func actionOfStop(kind string) Action {
	switch kind {
	case stopQuota:
		return QuotaExhausted
	case stopSlow:
		return SlowAccount
	case stopTemplate:
		return StopTemplate
	}
	return StopAccount
}

// reject archives a task whose payload can never be sent.
func (h *Handler) reject(o *outcome, reason string) error {
	o.decision = Decision{Action: Drop, Reason: reason}
	return permanent(reason)
}

func (h *Handler) account(appID string) (Account, error) {
	if appID == "" {
		appID = h.defaultAppID
	}
	if appID == "" {
		return Account{}, errors.New("appid: required, several accounts are configured")
	}
	acct, ok := h.accounts[appID]
	if !ok {
		return Account{}, fmt.Errorf("appid: %q is not configured on this worker", appID)
	}
	return acct, nil
}

// complete records the send before the task is acknowledged, then writes
// the result.
func (h *Handler) complete(ctx context.Context, t *asynq.Task, o *outcome, clientMsgID string) error {
	if err := h.ctl.recordSent(ctx, o.appID, o.taskID, o.msgID); err != nil {
		// The message is out; if the record is lost a re-run is still
		// caught by WeChat's client_msg_id window.
		h.log.Warn().Err(err).Str("task_id", o.taskID).Msg("sent record not written")
	}
	return h.writeResult(t, o, clientMsgID)
}

func (h *Handler) writeResult(t *asynq.Task, o *outcome, clientMsgID string) error {
	b, _ := json.Marshal(Result{
		MsgID:       o.msgID,
		AppID:       o.appID,
		ClientMsgID: clientMsgID,
		SentAt:      h.now().UTC(),
		Replayed:    o.replayed,
	})
	if _, err := t.ResultWriter().Write(b); err != nil {
		h.log.Warn().Err(err).Str("task_id", o.taskID).Msg("task result not written")
	}
	return nil
}

// failed turns a classified failure into what asynq should do next.
func (h *Handler) failed(ctx context.Context, o *outcome, probe bool, err error) error {
	d := o.decision
	switch d.Action {
	case StopAccount, StopTemplate, SlowAccount, QuotaExhausted:
		return h.stopFor(ctx, o, probe, err)
	}

	// Any other answer from WeChat means the account itself works.
	h.endProbe(ctx, o, probe, d.Action != Retry)
	switch d.Action {
	case Drop:
		return permanent(d.Reason)
	case AlreadySent:
		return nil
	case DelayRecipient:
		return &DelayError{Delay: h.policy.RecipientDelay + jitter(h.policy.RecipientDelay/2),
			Reason: d.Reason + "; only this recipient's message waits"}
	case Unknown:
		if o.attempt > unknownRetries {
			return permanent(d.Reason + " (unknown errcode, archived after retries)")
		}
	}
	if wait, ok := tokenWait(err); ok {
		return &DelayError{Delay: wait, Reason: d.Reason + ": " + err.Error()}
	}
	return fmt.Errorf("%s: %w", d.Reason, err)
}

// stopFor stops the account (or template) for as long as the decision
// calls for, logs the stop once across the fleet, and parks the task
// until then without consuming a retry.
func (h *Handler) stopFor(ctx context.Context, o *outcome, probe bool, err error) error {
	d := o.decision
	kind, dur, tpl := h.policy.stopOf(d, o.templateID, h.now(), err)
	until, set, serr := h.ctl.stop(ctx, o.appID, tpl, kind, d, dur)
	if probe {
		h.ctl.releaseProbe(ctx, o.appID)
	}
	if serr != nil {
		h.log.Error().Err(serr).Str("appid", o.appID).Msg("could not record the account stop")
		until = h.now().Add(dur)
	}
	if set && !reportedByTokenCache(err) {
		h.logStop(o, kind, tpl, until)
	}
	return h.waitUntil(until, stopReason(o.appID, tpl, kind, until, d.Reason))
}

// stopReason is what a task parked by a stop shows in asynqmon, e.g.
// "account wx123 quota until 2026-12-04T16:00:00Z: errcode 45009: ...".
func stopReason(appID, templateID, kind string, until time.Time, reason string) string {
	subject := "account " + appID
	if templateID != "" {
		subject = "template " + templateID + " of account " + appID
	}
	return fmt.Sprintf("%s %s until %s: %s", subject, kind, until.UTC().Format(time.RFC3339), reason)
}

func (h *Handler) logStop(o *outcome, kind, tpl string, until time.Time) {
	d := o.decision
	ev := h.log.Error()
	what := "account stopped: fix the cause below; tasks are kept and resume by themselves"
	switch kind {
	case stopSlow:
		ev, what = h.log.Warn(), "account slowed down: wechat asked for fewer sends per minute"
	case stopQuota:
		ev, what = h.log.Warn(), "account paused: daily quota used up; tasks wait for the reset"
	case stopTemplate:
		what = "template stopped: wechat banned it; its tasks are kept"
	}
	ev = ev.Str("appid", o.appID).Str("reason", d.Reason).Time("until", until)
	if d.Code != 0 {
		ev = ev.Int("errcode", d.Code)
	}
	if tpl != "" {
		ev = ev.Str("template_id", tpl)
	}
	ev.Msg(what)
}

// unknownRetries is how many times an errcode the table does not know is
// tried again before the task is archived.
const unknownRetries = 3

func (h *Handler) report(o *outcome) {
	ev := h.log.Info()
	msg := "delivered"
	switch {
	case o.err == nil && o.replayed:
		msg = "already delivered, completed from sent record"
	case o.err == nil && o.decision.Action == AlreadySent:
		msg = "wechat reports a duplicate, completed without sending"
	case errors.Is(o.err, asynq.SkipRetry):
		ev, msg = h.log.Warn(), "archived, will not retry"
	case !IsFailure(o.err):
		msg = "waiting"
	case o.err != nil && o.attempt > o.maxRetry:
		ev, msg = h.log.Error(), "failed on its last retry, archived: fix the cause, then run it "+
			"again from asynqmon"
	case o.err != nil:
		ev, msg = h.log.Warn(), "failed, will retry"
	}

	ev = ev.Str("task_id", o.taskID).
		Str("queue", o.queue).
		Str("appid", o.appID).
		Str("openid", MaskOpenID(o.openID)).
		Str("template_id", o.templateID).
		Int("attempt", o.attempt).
		Str("action", o.decision.Action.String()).
		Float64("duration_ms", durationMS(h.now().Sub(o.start)))
	if o.decision.Code != 0 {
		ev = ev.Int("errcode", o.decision.Code)
	}
	if o.msgID != 0 {
		ev = ev.Str("msgid", strconv.FormatInt(o.msgID, 10))
	}
	if o.err != nil {
		ev = ev.Str("reason", o.err.Error())
	}
	ev.Msg(msg)
}

// durationMS is d in milliseconds with a tenth of a millisecond
// precision, for log fields.
func durationMS(d time.Duration) float64 {
	return float64(d.Round(100*time.Microsecond)) / float64(time.Millisecond)
}

func toMessage(p *tasks.Payload, clientMsgID string) *wechat.TemplateMessage {
	msg := &wechat.TemplateMessage{
		ToUser:      p.ToUser,
		TemplateID:  p.TemplateID,
		URL:         p.URL,
		Data:        make(map[string]wechat.DataItem, len(p.Data)),
		ClientMsgID: clientMsgID,
	}
	if p.MiniProgram != nil {
		msg.MiniProgram = &wechat.MiniProgram{
			AppID:    p.MiniProgram.AppID,
			PagePath: p.MiniProgram.PagePath,
		}
	}
	for k, v := range p.Data {
		msg.Data[k] = wechat.DataItem{Value: v.Value, Color: v.Color}
	}
	return msg
}

// clientMsgID is the payload's own client_msg_id, or one derived from the
// task id so that every attempt of a task carries the same id and WeChat
// drops a resend inside its 10-minute window. The derived form is 32
// characters of [a-z0-9-] whatever the task id looks like.
func clientMsgID(p *tasks.Payload, taskID string) string {
	if p.ClientMsgID != "" {
		return p.ClientMsgID
	}
	sum := sha256.Sum256([]byte(taskID))
	return "wxn-" + hex.EncodeToString(sum[:14])
}

// MaskOpenID shows enough of an openid to correlate log lines and hides
// the rest: "oCC-…dOA".
func MaskOpenID(openID string) string {
	if len(openID) <= 8 {
		return "…"
	}
	return openID[:4] + "…" + openID[len(openID)-3:]
}
