package tasks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Payload is the body of a send_template task. The WeChat fields carry
// WeChat's own JSON names, so a payload reads like the request the worker
// will make; ID, AppID, Priority and EnqueuedAt are wxnotify's.
type Payload struct {
	// ID is the producer's idempotency key and becomes the asynq task
	// id: while a task with this id exists in its queue, another with the
	// same id is refused. Empty means asynq picks a random id and nothing
	// is deduplicated.
	ID string `json:"id,omitempty"`
	// AppID names the configured service account that sends the message.
	// It may stay empty when only one account is configured.
	AppID string `json:"appid,omitempty"`
	// ToUser is the recipient's openid under that account.
	ToUser string `json:"touser"`
	// TemplateID is one of the account's own template ids.
	TemplateID string `json:"template_id"`
	// URL is opened when the card is tapped; optional.
	URL string `json:"url,omitempty"`
	// MiniProgram opens a linked mini program page instead of URL.
	MiniProgram *MiniProgram `json:"miniprogram,omitempty"`
	// Data maps each template placeholder key (thing1, amount2, ...) to
	// its value.
	Data map[string]Value `json:"data"`
	// ClientMsgID is passed to WeChat, which sends one message per
	// (touser, client_msg_id) within at least 10 minutes. Setting it lets
	// a retry after an unclear failure avoid a duplicate message.
	ClientMsgID string `json:"client_msg_id,omitempty"`
	// Priority picks the queue; empty means PriorityDefault.
	Priority Priority `json:"priority,omitempty"`
	// EnqueuedAt is when the producer handed the task over. NewTask and
	// Producer.Enqueue fill it in when it is zero; the worker measures a
	// task's maximum age from it.
	EnqueuedAt time.Time `json:"enqueued_at,omitzero"`
}

// MiniProgram names a mini program page linked to the sending account.
type MiniProgram struct {
	// AppID is the mini program's appid; required.
	AppID string `json:"appid"`
	// PagePath is the page to open, and may carry a query
	// ("pages/bill?id=42"). Empty opens the home page.
	PagePath string `json:"pagepath,omitempty"`
}

// Value is one placeholder's content. WeChat stopped showing Color in
// May 2023; it is still passed on when set.
type Value struct {
	Value string `json:"value"`
	Color string `json:"color,omitempty"`
}

// Marshal encodes p as compact JSON without a trailing newline. Unlike
// json.Marshal it leaves &, < and > as they are: WeChat refuses \u00NN-style
// escapes (errcode 40033), and query strings in url must survive intact.
func (p *Payload) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)

	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// DecodePayload decodes b leniently, for the worker: unknown fields are
// ignored, so producers may add fields before the worker knows them.
// It does not validate. A payload that fails to decode can never
// succeed, so the worker should not retry it.
func DecodePayload(b []byte) (*Payload, error) {
	var p Payload
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode payload: %w", err)
	}
	return &p, nil
}
