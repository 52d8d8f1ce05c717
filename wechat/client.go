package wechat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// opSendTemplate names template sends in errors.
const opSendTemplate = OpSendTemplate

// Client sends template messages for one account, with tokens from a
// TokenSource. It is safe for concurrent use.
type Client struct {
	ts  TokenSource
	cfg config
}

// NewClient returns a client that takes its tokens from ts. Of the
// options it uses WithBaseURL and WithHTTPClient; the others have no
// effect on a Client.
func NewClient(ts TokenSource, opts ...Option) *Client {
	return &Client{ts: ts, cfg: newConfig(opts)}
}

// String describes the client by the host it calls.
func (c *Client) String() string { return "Client(" + c.cfg.baseURL + ")" }

// Format prints String for every verb. Without it, verbs such as %s and
// %d make fmt walk into the token source's fields while others use them.
func (c *Client) Format(s fmt.State, _ rune) {
	_, _ = s.Write([]byte(c.String()))
}

// sendAnswer is the body of a template send. msgid exceeds 2^53, so it is
// decoded straight into an int64, never through float64.
type sendAnswer struct {
	apiStatus
	MsgID int64 `json:"msgid"`
}

// SendTemplate sends msg with POST /cgi-bin/message/template/send
// (服务号 → 基础消息能力 → 模板消息 → 发送模板消息) and returns
// WeChat's msgid, which the TEMPLATESENDJOBFINISH event later reports as
// MsgID.
//
// If WeChat rejects the token (40001, 40014, 42001), SendTemplate
// invalidates it, takes a new one and sends once more; a second rejection
// is returned. Nothing else is retried. A non-zero errcode is an *Error;
// no answer, a status other than 200 and an unreadable answer are a
// *TransportError, *StatusError and *DecodeError.
func (c *Client) SendTemplate(ctx context.Context, msg *TemplateMessage) (int64, error) {
	if msg == nil {
		return 0, errors.New("send template: nil message")
	}
	body, err := EncodeJSON(msg)
	if err != nil {
		return 0, fmt.Errorf("send template: %w", err)
	}

	token, err := c.token(ctx)
	if err != nil {
		return 0, err
	}

	id, err := c.send(ctx, token, body)
	if code, ok := Code(err); !ok || !IsTokenRejected(code) {
		return id, err
	}

	c.ts.Invalidate(ctx, token)
	if token, err = c.token(ctx); err != nil {
		return 0, err
	}
	return c.send(ctx, token, body)
}

func (c *Client) token(ctx context.Context) (string, error) {
	token, err := c.ts.Token(ctx)
	if err != nil {
		return "", fmt.Errorf("send template: get token: %w", err)
	}
	return token, nil
}

// send makes one POST of body with token. An answer with errcode 0 but no
// msgid is a *DecodeError: treating it as delivered could lose a message.
func (c *Client) send(ctx context.Context, token string, body []byte) (int64, error) {
	r := request{
		op:     opSendTemplate,
		method: http.MethodPost,
		path:   "/cgi-bin/message/template/send",
		query:  url.Values{"access_token": {token}},
		body:   body,
	}

	var out sendAnswer
	if err := c.cfg.do(ctx, r, &out); err != nil {
		return 0, err
	}

	if out.MsgID == 0 {
		return 0, &DecodeError{Op: opSendTemplate, Err: errors.New("no msgid in answer")}
	}
	return out.MsgID, nil
}
