package worker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/wxnotify/wxnotify/wechat"
	"github.com/wxnotify/wxnotify/worker"
)

// BenchmarkClassify measures the errcode policy on the answers a send
// meets most: success, a wrapped errcode, an HTTP 5xx, a timeout and an
// errcode the table does not know.
func BenchmarkClassify(b *testing.B) {
	sendErr := func(code int) error {
		return fmt.Errorf("send: %w", &wechat.Error{Op: wechat.OpSendTemplate, Code: code,
			Message: "require subscribe", RID: "6623f0e1-2a5b7c11-0d3e4f5a"})
	}
	cases := []struct {
		name string
		err  error
		want worker.Action
	}{
		{"delivered", nil, worker.Delivered},
		{"drop_43004", sendErr(wechat.CodeNotSubscribed), worker.Drop},
		{"retry_-1", sendErr(wechat.CodeSystemBusy), worker.Retry},
		{"http_502", &wechat.StatusError{Op: wechat.OpSendTemplate, StatusCode: 502}, worker.Retry},
		{"timeout", &wechat.TransportError{Op: wechat.OpSendTemplate,
			Err: context.DeadlineExceeded}, worker.Retry},
		{"unknown_99999", sendErr(99999), worker.Unknown},
		{"plain_error", errors.New("connection reset"), worker.Retry},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if got := worker.Classify(c.err).Action; got != c.want {
				b.Fatalf("Classify(%v) = %v, want %v", c.err, got, c.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				worker.Classify(c.err)
			}
		})
	}
}
