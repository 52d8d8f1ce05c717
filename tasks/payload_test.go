package tasks_test

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/tasks"
)

func TestMarshalLeavesHTMLCharactersUnescaped(t *testing.T) {
	t.Parallel()
	p := validPayload()
	p.URL = "https://pay.example.com/42?a=1&b=<2>"
	p.Data["thing1"] = tasks.Value{Value: "水&电<费>"}

	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}

	for _, want := range []string{`?a=1&b=<2>"`, `"水&电<费>"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("Marshal = %s, want it to contain %s", b, want)
		}
	}
	if bytes.Contains(b, []byte(`\u00`)) {
		t.Errorf("Marshal = %s, has \\u escapes", b)
	}
}

func TestMarshalHasNoTrailingNewlineAndOmitsUnsetFields(t *testing.T) {
	t.Parallel()
	p := &tasks.Payload{
		ToUser:     "o1",
		TemplateID: "t1",
		Data:       map[string]tasks.Value{"thing1": {Value: "v"}},
	}

	b, err := p.Marshal()

	if err != nil {
		t.Fatal(err)
	}
	const want = `{"touser":"o1","template_id":"t1","data":{"thing1":{"value":"v"}}}`
	if string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
}

func TestMarshalWritesEnqueuedAtAsRFC3339(t *testing.T) {
	t.Parallel()
	p := validPayload()
	p.EnqueuedAt = time.Date(2024, 4, 1, 8, 30, 0, 5000, time.UTC)

	b, err := p.Marshal()

	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"enqueued_at":"2024-04-01T08:30:00.000005Z"`)) {
		t.Errorf("Marshal = %s, want enqueued_at in RFC 3339", b)
	}
}

func TestLargePayloadSurvivesRoundTrip(t *testing.T) {
	t.Parallel()
	p := validPayload()
	p.MiniProgram = &tasks.MiniProgram{AppID: "wx0123456789abcdef", PagePath: "pages/bill?id=42&x=<y>"}
	p.Priority = tasks.PriorityLow
	p.EnqueuedAt = time.Date(2024, 4, 1, 8, 30, 0, 123456789, time.UTC)
	for i := range 500 {
		key := fmt.Sprintf("keyword%d", i)
		p.Data[key] = tasks.Value{Value: fmt.Sprintf("第%d项 \"引号\" & <尖括号> \\ 😀", i), Color: "#173177"}
	}

	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := tasks.DecodePayload(b)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := tasks.ParsePayload(b)
	if err != nil {
		t.Fatal(err)
	}

	if !reflect.DeepEqual(decoded, p) {
		t.Error("DecodePayload(Marshal(p)) differs from p")
	}
	if !reflect.DeepEqual(parsed, p) {
		t.Error("ParsePayload(Marshal(p)) differs from p")
	}
	if len(parsed.Data) != 504 || !maps.Equal(parsed.Data, p.Data) {
		t.Errorf("data has %d keys after the round trip, want 504", len(parsed.Data))
	}
}

func TestQueueName(t *testing.T) {
	t.Parallel()
	cases := []struct {
		prefix string
		p      tasks.Priority
		want   string
	}{
		{"wxnotify", tasks.PriorityCritical, "wxnotify:critical"},
		{"wxnotify", tasks.PriorityDefault, "wxnotify:default"},
		{"wxnotify", tasks.PriorityLow, "wxnotify:low"},
		{"wxnotify", "", "wxnotify:default"},
		{"", tasks.PriorityLow, "wxnotify:low"},
		{"billing", "", "billing:default"},
	}
	for _, tc := range cases {
		if got := tasks.QueueName(tc.prefix, tc.p); got != tc.want {
			t.Errorf("QueueName(%q, %q) = %q, want %q", tc.prefix, tc.p, got, tc.want)
		}
	}
}

func TestQueuesWeighCriticalHighest(t *testing.T) {
	t.Parallel()
	got := tasks.Queues("billing")

	want := map[string]int{"billing:critical": 6, "billing:default": 3, "billing:low": 1}
	if !maps.Equal(got, want) {
		t.Errorf("Queues = %v, want %v", got, want)
	}
}
