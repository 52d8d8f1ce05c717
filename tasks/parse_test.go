package tasks_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/tasks"
)

func TestParsePayloadReadsEveryField(t *testing.T) {
	t.Parallel()
	const doc = `{
	  "id": "invoice-42-due",
	  "appid": "wx8f3a1c2b4d5e6f70",
	  "touser": "oVq2b5Kx9mTz1YpLw3Hc8dRf4EaG",
	  "template_id": "Zc1x9QvB3nTm7LpA5sWd",
	  "url": "https://pay.example.com/42?a=1&b=2",
	  "miniprogram": {"appid": "wx0123456789abcdef", "pagepath": "pages/bill?id=42"},
	  "data": {"thing1": {"value": "物业费", "color": "#173177"}, "amount2": {"value": "¥12.00"}},
	  "client_msg_id": "invoice-42-due",
	  "priority": "critical",
	  "enqueued_at": "2024-04-01T08:30:00Z"
	}`

	got, err := tasks.ParsePayload([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}

	want := &tasks.Payload{
		ID:          "invoice-42-due",
		AppID:       "wx8f3a1c2b4d5e6f70",
		ToUser:      "oVq2b5Kx9mTz1YpLw3Hc8dRf4EaG",
		TemplateID:  "Zc1x9QvB3nTm7LpA5sWd",
		URL:         "https://pay.example.com/42?a=1&b=2",
		MiniProgram: &tasks.MiniProgram{AppID: "wx0123456789abcdef", PagePath: "pages/bill?id=42"},
		Data: map[string]tasks.Value{
			"thing1":  {Value: "物业费", Color: "#173177"},
			"amount2": {Value: "¥12.00"},
		},
		ClientMsgID: "invoice-42-due",
		Priority:    tasks.PriorityCritical,
		EnqueuedAt:  time.Date(2024, 4, 1, 8, 30, 0, 0, time.UTC),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParsePayload =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParsePayloadTakesNullAsAbsent(t *testing.T) {
	t.Parallel()
	doc := `{"touser": null, "miniprogram": null, "data": null, "enqueued_at": null}`

	got, err := tasks.ParsePayload([]byte(doc))

	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, &tasks.Payload{}) {
		t.Errorf("ParsePayload = %+v, want the zero payload", got)
	}
}

func TestParsePayloadNamesEachProblem(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		doc  string
		want string // problems joined by "; "
	}{
		{"misspelt top-level field", `{"temlate_id": "x"}`, "temlate_id: unknown field"},
		{"field in the wrong case", `{"touser": "a", "TOUSER": "b"}`, "TOUSER: unknown field"},
		{"unknown mini program field", `{"miniprogram": {"appid": "wx1", "page_path": "p"}}`,
			"miniprogram.page_path: unknown field"},
		{"unknown data entry field", `{"data": {"thing1": {"value": "x", "colour": "#ffffff"}}}`,
			"data.thing1.colour: unknown field"},
		{"repeated field", `{"touser": "a", "touser": "b"}`, "touser: duplicate field"},
		{"repeated data key", `{"data": {"thing1": {"value": "a"}, "thing1": {"value": "b"}}}`,
			"data.thing1: duplicate field"},
		{"number for a string", `{"touser": 123}`, "touser: must be a string, not a number"},
		{"boolean for a string", `{"priority": true}`, "priority: must be a string, not a boolean"},
		{"string for data", `{"data": "x"}`, "data: must be an object, not a string"},
		{"bare string for a data entry", `{"data": {"thing1": "x"}}`,
			"data.thing1: must be an object, not a string"},
		{"null for a data entry", `{"data": {"thing1": null}}`,
			"data.thing1: must be an object, not null"},
		{"number for a data value", `{"data": {"thing1": {"value": 5}}}`,
			"data.thing1.value: must be a string, not a number"},
		{"array for the mini program", `{"miniprogram": []}`,
			"miniprogram: must be an object, not an array"},
		{"enqueued_at not a time", `{"enqueued_at": "yesterday"}`,
			"enqueued_at: must be an RFC 3339 time"},
		{"enqueued_at a number", `{"enqueued_at": 1712000000}`,
			"enqueued_at: must be a string, not a number"},
		{"text after the object", `{"touser": "a"} x`, "payload: has data after the JSON object"},
		{"second object", `{}{}`, "payload: has data after the JSON object"},
		{"extra closing brace", `{"touser": "a"}}`, "payload: has data after the JSON object"},
		{"array document", `[]`, "payload: must be a JSON object, not an array"},
		{"null document", `null`, "payload: must be a JSON object, not null"},
		{"empty document", ``, "payload: empty"},
		{"blank document", " \n", "payload: empty"},
		{"truncated document", `{"touser": `, "payload: invalid JSON: unexpected end of input"},
		{"bad token", `{"touser": x}`,
			"payload: invalid JSON at byte 12: invalid character 'x' looking for beginning of value"},
		{"several problems in document order",
			`{"temlate_id": "x", "touser": 1, "data": {"thing1": "y", "thing2": {"valeu": "z"}}}`,
			"temlate_id: unknown field; " +
				"touser: must be a string, not a number; " +
				"data.thing1: must be an object, not a string; " +
				"data.thing2.valeu: unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := tasks.ParsePayload([]byte(tc.doc))
			if p != nil {
				t.Errorf("ParsePayload returned a payload alongside problems: %+v", p)
			}
			got := strings.Join(problemsOf(t, err), "; ")
			if got != tc.want {
				t.Errorf("problems =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestParsePayloadDoesNotValidate(t *testing.T) {
	t.Parallel()
	p, err := tasks.ParsePayload([]byte(`{"touser": "not an openid!", "priority": "urgent"}`))
	if err != nil {
		t.Fatalf("ParsePayload = %v, want nil: field rules belong to Validate", err)
	}
	if p.Validate() == nil {
		t.Error("Validate accepted the parsed payload")
	}
}

func TestDecodePayloadIgnoresUnknownFields(t *testing.T) {
	t.Parallel()
	doc := `{"touser": "o1", "added_later": {"x": 1}, "data": {"thing1": {"value": "v", "extra": 2}}}`

	got, err := tasks.DecodePayload([]byte(doc))

	if err != nil {
		t.Fatal(err)
	}
	want := &tasks.Payload{ToUser: "o1", Data: map[string]tasks.Value{"thing1": {Value: "v"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DecodePayload = %+v, want %+v", got, want)
	}
}

func TestDecodePayloadRefusesMalformedJSON(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{``, `{"touser": 1}`, `{"touser": "a"} x`, `[`} {
		p, err := tasks.DecodePayload([]byte(doc))
		if err == nil || p != nil || !strings.HasPrefix(err.Error(), "decode payload: ") {
			t.Errorf("DecodePayload(%q) = %v, %v; want a decode payload error", doc, p, err)
		}
	}
}
