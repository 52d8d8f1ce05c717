package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// ParsePayload decodes b strictly, for producers that accept payloads
// from outside (an HTTP API, a file). Field names must match exactly
// (case included), a field may appear only once, b must hold a single
// JSON object and nothing after it, and every value must have the right
// JSON type. Every such problem is reported, each naming its field by
// JSON path, in a *ValidationError:
//
//	temlate_id: unknown field; data.thing1: must be an object, not a string
//
// Malformed JSON is reported as one problem of the field "payload".
//
// ParsePayload does not apply the checks of Validate.
func ParsePayload(b []byte) (*Payload, error) {
	var d strictDecoder
	p := &Payload{}
	d.root(b, p)

	if err := d.problems.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// strictDecoder walks a payload one JSON object at a time, collecting
// problems instead of stopping at the first.
type strictDecoder struct {
	problems problems
}

// root decodes the whole document b into p.
func (d *strictDecoder) root(b []byte, p *Payload) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		d.problems.add("payload", syntaxProblem(err))
		return
	}

	if _, err := dec.Token(); err != io.EOF {
		d.problems.add("payload", "has data after the JSON object")
	}
	if kindOf(raw) != "an object" {
		d.problems.add("payload", "must be a JSON object, not "+kindOf(raw))
		return
	}
	d.object(raw, "", func(key, path string, v json.RawMessage) bool {
		return d.payloadField(p, key, path, v)
	})
}

// payloadField decodes the top-level member key and reports whether key
// is known.
func (d *strictDecoder) payloadField(p *Payload, key, path string, v json.RawMessage) bool {
	switch key {
	case "id":
		d.str(path, v, &p.ID)
	case "appid":
		d.str(path, v, &p.AppID)
	case "touser":
		d.str(path, v, &p.ToUser)
	case "template_id":
		d.str(path, v, &p.TemplateID)
	case "url":
		d.str(path, v, &p.URL)
	case "client_msg_id":
		d.str(path, v, &p.ClientMsgID)
	case "priority":
		d.str(path, v, (*string)(&p.Priority))
	case "miniprogram":
		p.MiniProgram = d.miniProgram(path, v)
	case "data":
		p.Data = d.data(path, v)
	case "enqueued_at":
		d.enqueuedAt(path, v, p)
	default:
		return false
	}
	return true
}

// miniProgram decodes the miniprogram object; null gives nil.
func (d *strictDecoder) miniProgram(path string, v json.RawMessage) *MiniProgram {
	mp := &MiniProgram{}
	ok := d.object(v, path, func(key, path string, v json.RawMessage) bool {
		switch key {
		case "appid":
			d.str(path, v, &mp.AppID)
		case "pagepath":
			d.str(path, v, &mp.PagePath)
		default:
			return false
		}
		return true
	})
	if !ok {
		return nil
	}
	return mp
}

// data decodes the data object; null gives nil.
func (d *strictDecoder) data(path string, v json.RawMessage) map[string]Value {
	m := map[string]Value{}
	ok := d.object(v, path, func(key, path string, v json.RawMessage) bool {
		m[key] = d.value(path, v)
		return true
	})
	if !ok {
		return nil
	}
	return m
}

// value decodes one {"value", "color"} entry of data.
func (d *strictDecoder) value(path string, v json.RawMessage) Value {
	var val Value
	if kindOf(v) != "an object" {
		d.problems.add(path, "must be an object, not "+kindOf(v))
		return val
	}
	d.object(v, path, func(key, path string, v json.RawMessage) bool {
		switch key {
		case "value":
			d.str(path, v, &val.Value)
		case "color":
			d.str(path, v, &val.Color)
		default:
			return false
		}
		return true
	})
	return val
}

// object hands each member of the JSON object v to field, which reports
// whether it knows the key. It returns false when v is null or not an
// object. v has already been checked to be well-formed JSON.
func (d *strictDecoder) object(v json.RawMessage, path string, field memberFunc) bool {
	switch kindOf(v) {
	case "null":
		return false
	case "an object":
	default:
		d.problems.add(path, "must be an object, not "+kindOf(v))
		return false
	}

	dec := json.NewDecoder(bytes.NewReader(v))
	dec.Token() // the opening brace
	seen := map[string]bool{}
	for dec.More() {
		d.member(dec, path, seen, field)
	}
	return true
}

// memberFunc decodes one object member and reports whether key is known.
type memberFunc func(key, path string, v json.RawMessage) bool

// member reads one key and its value from dec and hands them to field.
func (d *strictDecoder) member(
	dec *json.Decoder, path string, seen map[string]bool, field memberFunc,
) {
	tok, _ := dec.Token()
	key, _ := tok.(string)
	var v json.RawMessage
	dec.Decode(&v)

	path = joinPath(path, key)
	switch {
	case seen[key]:
		d.problems.add(path, "duplicate field")
	case !field(key, path, v):
		d.problems.add(path, "unknown field")
	}
	seen[key] = true
}

// str decodes the JSON string v into dst. null leaves dst empty.
func (d *strictDecoder) str(path string, v json.RawMessage, dst *string) {
	switch kindOf(v) {
	case "null":
	case "a string":
		json.Unmarshal(v, dst) // cannot fail: v is a well-formed string
	default:
		d.problems.add(path, "must be a string, not "+kindOf(v))
	}
}

// enqueuedAt decodes an RFC 3339 string into p.EnqueuedAt. null and ""
// leave it zero.
func (d *strictDecoder) enqueuedAt(path string, v json.RawMessage, p *Payload) {
	var s string
	d.str(path, v, &s)
	if s == "" {
		return
	}
	if err := p.EnqueuedAt.UnmarshalJSON(v); err != nil {
		d.problems.add(path, "must be an RFC 3339 time")
	}
}

// kindOf names the JSON type of the well-formed value v.
func kindOf(v json.RawMessage) string {
	if len(v) == 0 {
		return "empty"
	}
	switch v[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// joinPath appends key to the dotted JSON path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// syntaxProblem describes why b is not one well-formed JSON value.
func syntaxProblem(err error) string {
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return "empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "invalid JSON: unexpected end of input"
	case errors.As(err, &se):
		return "invalid JSON at byte " + strconv.FormatInt(se.Offset, 10) + ": " + se.Error()
	}
	return "invalid JSON: " + err.Error()
}
