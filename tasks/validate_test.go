package tasks_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/tasks"
)

// P keeps the validation tables narrow.
type P = tasks.Payload

// withValue returns a change that sets data[key] to value.
func withValue(key, value string) func(*P) {
	return func(p *P) { p.Data[key] = tasks.Value{Value: value} }
}

// withColor returns a change that gives data.thing1 the color c.
func withColor(c string) func(*P) {
	return func(p *P) { p.Data["thing1"] = tasks.Value{Value: "x", Color: c} }
}

func TestValidateAcceptsWellFormedPayloads(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(*P)
	}{
		{"reminder as is", func(*P) {}},
		{"only the required fields", func(p *P) {
			*p = P{ToUser: p.ToUser, TemplateID: p.TemplateID, Data: p.Data}
		}},
		{"openid at 64 bytes", func(p *P) { p.ToUser = strings.Repeat("o", 64) }},
		{"template id with - and _", func(p *P) { p.TemplateID = "a-B_9" }},
		{"thing at 20 characters", withValue("thing1", strings.Repeat("物", 20))},
		{"key type without digits", withValue("thing", "水费")},
		{"character_string at 32", withValue("character_string2", strings.Repeat("A", 32))},
		{"character_string with symbols", withValue("character_string2", "INV-42/7 #1")},
		{"phrase at 5", withValue("phrase3", "待支付待支")},
		{"phone_number at 17", withValue("phone_number4", "+86-138-0000-0000")},
		{"car_number at 8", withValue("car_number5", "粤B12345学")},
		{"const at 20", withValue("const6", strings.Repeat("c", 20))},
		{"amount at 20", withValue("amount7", "¥1,234,567,890,12.00")},
		{"time range at 40", withValue("time8", strings.Repeat("1", 40))},
		{"date at 40", withValue("date9", strings.Repeat("1", 40))},
		{"unknown type at 20", withValue("keyword1", strings.Repeat("k", 20))},
		{"empty first and long remark", func(p *P) {
			p.Data["first"] = tasks.Value{}
			p.Data["remark"] = tasks.Value{Value: strings.Repeat("备注", 100)}
		}},
		{"key starting with _", withValue("_x", "v")},
		{"colour in either case", withColor("#FF00aa")},
		{"url with an upper-case scheme", func(p *P) { p.URL = "HTTP://Example.com" }},
		{"mini program with appid only", func(p *P) {
			p.MiniProgram = &tasks.MiniProgram{AppID: "wx0123456789abcdef"}
		}},
		{"client_msg_id of printable ASCII", func(p *P) { p.ClientMsgID = strings.Repeat("!~", 32) }},
		{"id of 128 bytes in any script", func(p *P) { p.ID = strings.Repeat("账", 42) + "xx" }},
		{"a priority", func(p *P) { p.Priority = tasks.PriorityLow }},
		{"any appid without configured accounts", func(p *P) { p.AppID = "wxany" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := validPayload()
			tc.change(p)
			if err := p.Validate(); err != nil {
				t.Fatalf("Validate = %v, want nil", err)
			}
		})
	}
}

func TestValidateNamesFieldAndProblem(t *testing.T) {
	t.Parallel()
	const (
		badKey = " is not a placeholder name: use letters, digits and _, not starting with a digit"
		badURL = "url: must be an absolute http or https URL with a host"
	)
	cases := []struct {
		name   string
		change func(*P)
		want   string
	}{
		{"touser missing", func(p *P) { p.ToUser = "" }, "touser: required"},
		{"touser too long", func(p *P) { p.ToUser = strings.Repeat("o", 65) },
			"touser: 65 bytes, over the limit of 64"},
		{"touser with a space", func(p *P) { p.ToUser = "o abc" },
			"touser: may hold only A-Z, a-z, 0-9, _ and -"},
		{"template_id missing", func(p *P) { p.TemplateID = "" }, "template_id: required"},
		{"template_id too long", func(p *P) { p.TemplateID = strings.Repeat("t", 65) },
			"template_id: 65 bytes, over the limit of 64"},
		{"template_id with a dot", func(p *P) { p.TemplateID = "abc.def" },
			"template_id: may hold only A-Z, a-z, 0-9, _ and -"},
		{"data missing", func(p *P) { p.Data = nil }, "data: required"},
		{"data empty", func(p *P) { p.Data = map[string]tasks.Value{} }, "data: required"},
		{"key starting with a digit", onlyKey("1thing"), `data: key "1thing"` + badKey},
		{"key with a dash", onlyKey("thing-1"), `data: key "thing-1"` + badKey},
		{"empty key", onlyKey(""), `data: key ""` + badKey},
		{"value empty", withValue("thing1", ""), "data.thing1.value: required"},
		{"value with a newline", withValue("thing1", "a\nb"), "data.thing1.value: has a line break"},
		{"value with a CR", withValue("thing1", "a\rb"), "data.thing1.value: has a line break"},
		{"value with U+2028", withValue("thing1", "a\u2028b"), "data.thing1.value: has a line break"},
		{"value with a tab", withValue("thing1", "a\tb"),
			"data.thing1.value: has a control character"},
		{"value with a NUL", withValue("thing1", "a\x00b"),
			"data.thing1.value: has a control character"},
		{"value not UTF-8", withValue("thing1", "a\xffb"), "data.thing1.value: is not valid UTF-8"},
		{"thing over 20", withValue("thing1", strings.Repeat("物", 21)),
			"data.thing1.value: 21 characters, over the limit of 20 for thing"},
		{"character_string over 32", withValue("character_string4", strings.Repeat("A", 33)),
			"data.character_string4.value: 33 characters, over the limit of 32 for character_string"},
		{"character_string with Chinese", withValue("character_string4", "订单42"),
			"data.character_string4.value: must be ASCII only for character_string"},
		{"phrase over 5", withValue("phrase3", "待支付待支付"),
			"data.phrase3.value: 6 characters, over the limit of 5 for phrase"},
		{"phone_number over 17", withValue("phone_number4", strings.Repeat("1", 18)),
			"data.phone_number4.value: 18 characters, over the limit of 17 for phone_number"},
		{"car_number over 8", withValue("car_number5", "粤B123456学"),
			"data.car_number5.value: 9 characters, over the limit of 8 for car_number"},
		{"const over 20", withValue("const6", strings.Repeat("c", 21)),
			"data.const6.value: 21 characters, over the limit of 20 for const"},
		{"amount over 20", withValue("amount2", strings.Repeat("9", 21)),
			"data.amount2.value: 21 characters, over the limit of 20 for amount"},
		{"time over 40", withValue("time3", strings.Repeat("1", 41)),
			"data.time3.value: 41 characters, over the limit of 40 for time"},
		{"date over 40", withValue("date3", strings.Repeat("1", 41)),
			"data.date3.value: 41 characters, over the limit of 40 for date"},
		{"unknown type over 20", withValue("keyword1", strings.Repeat("k", 21)),
			"data.keyword1.value: 21 characters, over the limit of 20"},
		{"remark with a newline", withValue("remark", "a\nb"), "data.remark.value: has a line break"},
		{"colour by name", withColor("red"), "data.thing1.color: must be #RRGGBB"},
		{"colour not hex", withColor("#12345G"), "data.thing1.color: must be #RRGGBB"},
		{"colour too short", withColor("#fff"), "data.thing1.color: must be #RRGGBB"},
		{"url relative", func(p *P) { p.URL = "pay.example.com/42" }, badURL},
		{"url not http", func(p *P) { p.URL = "ftp://example.com/42" }, badURL},
		{"url without host", func(p *P) { p.URL = "https:///42" }, badURL},
		{"url javascript", func(p *P) { p.URL = "javascript:alert(1)" }, badURL},
		{"url unparsable", func(p *P) { p.URL = "https://exa mple.com/%zz" }, badURL},
		{"mini program without appid", func(p *P) {
			p.MiniProgram = &tasks.MiniProgram{PagePath: "pages/bill?id=42"}
		}, "miniprogram.appid: required"},
		{"client_msg_id too long", func(p *P) { p.ClientMsgID = strings.Repeat("c", 65) },
			"client_msg_id: 65 bytes, over the limit of 64"},
		{"client_msg_id with a space", func(p *P) { p.ClientMsgID = "a b" },
			"client_msg_id: must be printable ASCII without spaces"},
		{"client_msg_id not ASCII", func(p *P) { p.ClientMsgID = "账单" },
			"client_msg_id: must be printable ASCII without spaces"},
		{"id too long", func(p *P) { p.ID = strings.Repeat("i", 129) },
			"id: 129 bytes, over the limit of 128"},
		{"id with a space", func(p *P) { p.ID = "a b" }, "id: has whitespace or a control character"},
		{"id with DEL", func(p *P) { p.ID = "a\x7fb" }, "id: has whitespace or a control character"},
		{"id not UTF-8", func(p *P) { p.ID = "a\xffb" }, "id: is not valid UTF-8"},
		{"priority unknown", func(p *P) { p.Priority = "urgent" },
			`priority: must be "critical", "default", "low" or empty`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := validPayload()
			tc.change(p)
			got := problemsOf(t, p.Validate())
			if !slices.Equal(got, []string{tc.want}) {
				t.Errorf("problems = %q, want [%q]", got, tc.want)
			}
		})
	}
}

// onlyKey returns a change that leaves data with the one key k.
func onlyKey(k string) func(*P) {
	return func(p *P) { p.Data = map[string]tasks.Value{k: {Value: "x"}} }
}

func TestValidateAppliesRules(t *testing.T) {
	t.Parallel()
	one := tasks.Rules{AppIDs: []string{"wxa"}}
	several := tasks.Rules{AppIDs: []string{"wxa", "wxb"}}
	cases := []struct {
		name  string
		rules tasks.Rules
		appid string
		value string // of data.keyword1
		want  string // "" for no problem
	}{
		{"no appid, one account", one, "", "k", ""},
		{"the one account", one, "wxa", "k", ""},
		{"another appid, one account", one, "wxz", "k", `appid: "wxz" is not a configured account`},
		{"no appid, several accounts", several, "", "k",
			"appid: required when several accounts are configured"},
		{"one of several accounts", several, "wxb", "k", ""},
		{"none of several accounts", several, "wxz", "k", `appid: "wxz" is not a configured account`},
		{"raised cap, within", tasks.Rules{MaxValueRunes: 30}, "", strings.Repeat("k", 30), ""},
		{"raised cap, over", tasks.Rules{MaxValueRunes: 30}, "", strings.Repeat("k", 31),
			"data.keyword1.value: 31 characters, over the limit of 30"},
		{"raised cap leaves typed keys alone", tasks.Rules{MaxValueRunes: 30}, "", "k", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := validPayload()
			p.AppID = tc.appid
			p.Data["keyword1"] = tasks.Value{Value: tc.value}
			p.Data["thing1"] = tasks.Value{Value: strings.Repeat("物", 20)}

			err := tc.rules.Validate(p)

			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if got := problemsOf(t, err); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("problems = %q, want [%q]", got, tc.want)
			}
		})
	}
}

func TestValidateReportsEveryProblemInFieldOrder(t *testing.T) {
	t.Parallel()
	p := validPayload()
	p.ToUser = ""
	p.Priority = "urgent"
	p.Data["thing9"] = tasks.Value{Value: "a\nb"}
	p.Data["amount1"] = tasks.Value{Value: "", Color: "blue"}

	got := problemsOf(t, p.Validate())

	want := []string{
		"touser: required",
		"data.amount1.color: must be #RRGGBB",
		"data.amount1.value: required",
		"data.thing9.value: has a line break",
		`priority: must be "critical", "default", "low" or empty`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems =\n%q\nwant\n%q", got, want)
	}
}

func TestValidationErrorJoinsProblemsAndUnwrapsToFieldErrors(t *testing.T) {
	t.Parallel()
	p := validPayload()
	p.ToUser = ""
	p.TemplateID = ""

	err := p.Validate()

	const want = "touser: required; template_id: required"
	if err == nil || err.Error() != want {
		t.Fatalf("Validate = %v, want %q", err, want)
	}
	var fe tasks.FieldError
	if !errors.As(err, &fe) || fe.Field != "touser" {
		t.Errorf("errors.As FieldError = %+v, want the touser problem", fe)
	}
}

func TestValidateRefusesPayloadOverSizeLimit(t *testing.T) {
	t.Parallel()
	p := validPayload()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	rules := tasks.Rules{MaxPayloadBytes: len(b) - 1}

	got := problemsOf(t, rules.Validate(p))

	want := fmt.Sprintf("payload: %d bytes, over the limit of %d", len(b), len(b)-1)
	if !slices.Equal(got, []string{want}) {
		t.Errorf("problems = %q, want [%q]", got, want)
	}
	if err := (tasks.Rules{MaxPayloadBytes: len(b)}).Validate(p); err != nil {
		t.Errorf("at exactly the limit: Validate = %v, want nil", err)
	}
}

func TestValidateDefaultSizeLimitIs64KiB(t *testing.T) {
	t.Parallel()
	p := validPayload()
	p.Data["remark"] = tasks.Value{Value: strings.Repeat("r", tasks.DefaultMaxPayloadBytes)}

	got := problemsOf(t, p.Validate())

	if len(got) != 1 || !strings.HasPrefix(got[0], "payload: ") ||
		!strings.HasSuffix(got[0], "over the limit of 65536") {
		t.Errorf("problems = %q, want one payload size problem", got)
	}
}

func TestValidateNilPayload(t *testing.T) {
	t.Parallel()
	got := problemsOf(t, tasks.Rules{}.Validate(nil))
	if !slices.Equal(got, []string{"payload: required"}) {
		t.Errorf("problems = %q", got)
	}
}

func TestValidationErrorNeverQuotesDataValues(t *testing.T) {
	t.Parallel()
	const secret = "张三的身份证号码是一个很长的秘密值不该出现在错误里"
	p := validPayload()
	p.Data["thing1"] = tasks.Value{Value: secret}
	p.Data["character_string4"] = tasks.Value{Value: secret}

	err := p.Validate()

	if err == nil || strings.Contains(err.Error(), secret[:9]) {
		t.Errorf("Validate = %v, want an error without the value", err)
	}
}

func TestValidateEncodedMeasuresTheGivenBytes(t *testing.T) {
	t.Parallel()
	p := validPayload()
	raw := []byte(`{"touser":"` + p.ToUser + `", "padding": "` + strings.Repeat("x", 200) + `"}`)
	rules := tasks.Rules{MaxPayloadBytes: len(raw) - 1}

	got := problemsOf(t, rules.ValidateEncoded(p, raw))

	want := fmt.Sprintf("payload: %d bytes, over the limit of %d", len(raw), len(raw)-1)
	if !slices.Equal(got, []string{want}) {
		t.Errorf("problems = %q, want [%q]", got, want)
	}
	if err := (tasks.Rules{}).ValidateEncoded(nil, raw); err == nil {
		t.Error("ValidateEncoded(nil) = nil, want an error")
	}
}
