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
	"github.com/redis/go-redis/v9"
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
	sent         *sentRecords
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
	return o
}

func (h *Handler) process(ctx context.Context, t *asynq.Task, o *outcome) error {
	p, err := tasks.DecodePayload(t.Payload())
	if err != nil {
		return h.reject(o, "payload cannot be decoded: "+err.Error())
	}
	o.appID, o.openID, o.templateID = p.AppID, p.ToUser, p.TemplateID

	if err := h.rules.Validate(p); err != nil {
		return h.reject(o, "invalid payload: "+err.Error())
	}
	acct, err := h.account(p.AppID)
	if err != nil {
		return h.reject(o, err.Error())
	}
	o.appID = acct.AppID

	msg := toMessage(p, clientMsgID(p, o.taskID))
	if done, err := h.completeIfSent(ctx, t, o, msg.ClientMsgID); done || err != nil {
		return err
	}

	msgID, err := acct.Sender.SendTemplate(ctx, msg)
	o.decision = Classify(err)
	if o.decision.Action == Delivered {
		o.msgID = msgID
		return h.complete(ctx, t, o, msg.ClientMsgID)
	}
	return h.failed(ctx, o, err)
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

// completeIfSent finishes a task whose message a previous run already
// delivered, so a re-run after a crash or a shutdown requeue sends
// nothing twice.
func (h *Handler) completeIfSent(ctx context.Context, t *asynq.Task, o *outcome,
	clientMsgID string) (bool, error) {
	msgID, found, err := h.sent.lookup(ctx, o.taskID)
	if err != nil {
		o.decision = Decision{Action: Retry, Reason: "cannot read sent record"}
		return false, fmt.Errorf("read sent record: %w", err)
	}
	if !found {
		return false, nil
	}
	o.decision = Decision{Action: Delivered}
	o.msgID, o.replayed = msgID, true
	return true, h.writeResult(t, o, clientMsgID)
}

// complete records the send before the task is acknowledged, then writes
// the result.
func (h *Handler) complete(ctx context.Context, t *asynq.Task, o *outcome, clientMsgID string) error {
	if err := h.sent.record(ctx, o.taskID, o.msgID); err != nil {
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
func (h *Handler) failed(ctx context.Context, o *outcome, err error) error {
	d := o.decision
	switch d.Action {
	case Drop:
		return permanent(d.Reason)
	case AlreadySent:
		return nil
	case Unknown:
		if o.attempt > unknownRetries {
			return permanent(d.Reason + " (unknown errcode, archived after retries)")
		}
		return fmt.Errorf("%s: %w", d.Reason, err)
	default:
		return fmt.Errorf("%s: %w", d.Reason, err)
	}
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

// sentRecords remembers, per task id, the msgid of a message already
// delivered.
type sentRecords struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
}

func (s *sentRecords) key(taskID string) string { return s.prefix + "sent:" + taskID }

func (s *sentRecords) lookup(ctx context.Context, taskID string) (int64, bool, error) {
	v, err := s.rdb.Get(ctx, s.key(taskID)).Result()
	if errors.Is(err, redis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	id, err := strconv.ParseInt(v, 10, 64)
	return id, err == nil, err
}

func (s *sentRecords) record(ctx context.Context, taskID string, msgID int64) error {
	// The record must survive a cancelled task context: the message is
	// already out.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return s.rdb.Set(ctx, s.key(taskID), strconv.FormatInt(msgID, 10), s.ttl).Err()
}
