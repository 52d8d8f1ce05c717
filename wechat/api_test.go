package wechat_test

import (
	"testing"

	"github.com/wxnotify/wxnotify/wechat"
)

func TestSplitRID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, msg, rid string
	}{
		{"invalid openid rid: 64b7a1c2-1f2e3d4c", "invalid openid", "64b7a1c2-1f2e3d4c"},
		{"invalid ip 1.2.3.4, not in whitelist, rid: a-b", "invalid ip 1.2.3.4, not in whitelist", "a-b"},
		{"rid: a-b-c", "", "a-b-c"},
		{"access_token expired rid:a-b-c ", "access_token expired", "a-b-c"},
		{"ok", "ok", ""},
		{"", "", ""},
		{"bad grid: 3", "bad grid: 3", ""},
		{"trailing marker rid: ", "trailing marker rid: ", ""},
		{"rid: a-b-c then more text", "rid: a-b-c then more text", ""},
	}
	for _, tt := range tests {
		msg, rid := wechat.SplitRID(tt.in)
		if msg != tt.msg || rid != tt.rid {
			t.Errorf("SplitRID(%q) = %q, %q; want %q, %q",
				tt.in, msg, rid, tt.msg, tt.rid)
		}
	}
}

func TestEncodeJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"html characters kept", map[string]string{"u": "?b=1&c=<d>"}, `{"u":"?b=1&c=<d>"}`},
		{"no trailing newline", []int{1, 2}, `[1,2]`},
		{"non-ascii kept", "¥12 包裹", `"¥12 包裹"`},
	}
	for _, tt := range tests {
		got, err := wechat.EncodeJSON(tt.in)
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: EncodeJSON = %s, %v; want %s", tt.name, got, err, tt.want)
		}
	}
}

func TestEncodeJSONReportsUnsupportedValues(t *testing.T) {
	t.Parallel()
	if _, err := wechat.EncodeJSON(make(chan int)); err == nil {
		t.Error("EncodeJSON(chan) succeeded, want an error")
	}
}
