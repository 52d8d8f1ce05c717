package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxResponseBytes caps how much of an answer is read. WeChat's answers
// are a few hundred bytes; anything near the cap is not WeChat.
const maxResponseBytes = 1 << 20

// maxDrainBytes is how much of an unwanted body is read so that the
// connection can be reused.
const maxDrainBytes = 64 << 10

// request is one call to the API. Credentials go in query or body only:
// the URL built from base and path alone may appear in errors.
type request struct {
	op     string
	method string
	path   string
	query  url.Values
	body   []byte
}

// answer is a decoded response body that carries errcode and errmsg.
type answer interface {
	status() *apiStatus
}

// apiStatus is the errcode/errmsg pair present in every WeChat answer,
// embedded in each response type.
type apiStatus struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func (s *apiStatus) status() *apiStatus { return s }

// err turns a non-zero errcode into an *Error for op.
func (s *apiStatus) err(op string) error {
	if s.ErrCode == 0 {
		return nil
	}

	msg, rid := SplitRID(s.ErrMsg)
	return &Error{Op: op, Code: s.ErrCode, Message: msg, RID: rid}
}

// do sends r and decodes a 200 answer into out. It returns a
// *TransportError, *StatusError or *DecodeError when no usable answer
// came back, and an *Error when the answer has a non-zero errcode.
func (c *config) do(ctx context.Context, r request, out answer) error {
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return err
	}

	resp, err := c.httpClient.Do(req)
	if err != nil {
		return &TransportError{Op: r.op, Err: stripURL(err)}
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBytes))
		return &StatusError{Op: r.op, StatusCode: resp.StatusCode}
	}

	if err := readAnswer(r.op, resp.Body, out); err != nil {
		return err
	}
	return out.status().err(r.op)
}

// newRequest builds the HTTP request for r. The query is attached after
// the URL is parsed, so that a parse error cannot quote a credential.
func (c *config) newRequest(ctx context.Context, r request) (*http.Request, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}

	req, err := http.NewRequestWithContext(ctx, r.method, c.baseURL+r.path, body)
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", r.op, err)
	}

	req.URL.RawQuery = r.query.Encode()
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// readAnswer reads at most maxResponseBytes of body and decodes it into
// out.
func readAnswer(op string, body io.Reader, out answer) error {
	data, err := io.ReadAll(io.LimitReader(body, maxResponseBytes+1))
	if err != nil {
		return &TransportError{Op: op, Err: stripURL(err)}
	}

	if len(data) > maxResponseBytes {
		err := fmt.Errorf("body larger than %d bytes", maxResponseBytes)
		return &DecodeError{Op: op, Err: err}
	}

	if err := json.Unmarshal(data, out); err != nil {
		return &DecodeError{Op: op, Err: err}
	}
	return nil
}

// stripURL removes the request URL that net/http wraps around transport
// errors, since the URL's query may hold the access_token or secret.
func stripURL(err error) error {
	var ue *url.Error
	for errors.As(err, &ue) {
		if ue.Err == nil {
			return errors.New(strings.ToLower(ue.Op) + " failed")
		}
		err = ue.Err
	}
	return err
}

// EncodeJSON encodes v as WeChat expects: '&', '<' and '>' stay as they
// are (WeChat answers \u0026 and the like with 40033) and there is no
// trailing newline.
//
// encoding/json still writes U+2028, U+2029 and control characters other
// than \n, \r and \t as \u00NN-style escapes; callers that must avoid 40033
// should remove those characters from the values first.
func EncodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)

	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// SplitRID separates the request id WeChat appends to errmsg ("invalid
// openid rid: 64b7a1c2-1f2e3d4c-5b6a7988") from the message. rid is empty
// when errmsg does not end in a "rid: <id>" part; msg is then errmsg
// unchanged.
func SplitRID(errmsg string) (msg, rid string) {
	const marker = "rid:"

	i := strings.LastIndex(errmsg, marker)
	if i < 0 || (i > 0 && !isRIDSeparator(errmsg[i-1])) {
		return errmsg, ""
	}

	rid = strings.TrimSpace(errmsg[i+len(marker):])
	if rid == "" || strings.ContainsAny(rid, " \t\r\n") {
		return errmsg, ""
	}
	return strings.TrimRight(errmsg[:i], " ,;"), rid
}

// isRIDSeparator reports whether b may precede "rid:", so that a word
// ending in "rid" (such as "grid:") is not taken for the marker.
func isRIDSeparator(b byte) bool {
	return b == ' ' || b == ',' || b == ';' || b == '\t'
}
