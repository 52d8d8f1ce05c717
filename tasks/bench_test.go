package tasks_test

import (
	"testing"

	"github.com/wxnotify/wxnotify/tasks"
)

// BenchmarkDecodeAndValidate measures what the worker (lenient) and an
// HTTP producer (strict) spend per payment-due reminder before a send.
func BenchmarkDecodeAndValidate(b *testing.B) {
	p := validPayload()
	p.AppID = "wx8f3a1c2b4d5e6f70"
	p.Data["phrase5"] = tasks.Value{Value: "待支付"}
	p.Data["const6"] = tasks.Value{Value: "逾期将停止服务"}
	body, err := p.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	rules := tasks.Rules{AppIDs: []string{"wx8f3a1c2b4d5e6f70", "wx1111111111111111"}}

	decoders := []struct {
		name   string
		decode decoder
	}{
		{"lenient", tasks.DecodePayload},
		{"strict", tasks.ParsePayload},
	}
	for _, d := range decoders {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				decodeAndValidate(b, d.decode, rules, body)
			}
		})
	}
}

// decoder is DecodePayload or ParsePayload.
type decoder func([]byte) (*tasks.Payload, error)

func decodeAndValidate(b *testing.B, decode decoder, r tasks.Rules, body []byte) {
	p, err := decode(body)
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Validate(p); err != nil {
		b.Fatal(err)
	}
}
