package tasks

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on identifiers. WeChat documents no maximum length for any of
// them; the bounds are generous ones of our own.
const (
	// MaxToUserLen bounds touser, in bytes. Openids are 28 characters
	// in practice.
	MaxToUserLen = 64
	// MaxTemplateIDLen bounds template_id, in bytes. Template ids are 43
	// characters in practice.
	MaxTemplateIDLen = 64
	// MaxClientMsgIDLen bounds client_msg_id, in bytes. WeChat documents
	// neither its type nor its length; 64 is the limit of mass-send's
	// similar clientmsgid.
	MaxClientMsgIDLen = 64
	// MaxIDLen bounds id, wxnotify's own field, in bytes.
	MaxIDLen = 128
)

// Limits on a whole payload.
const (
	// DefaultMaxValueRunes caps the value of a data key whose type is
	// not known. Since May 2023 WeChat allows 20 characters per field.
	DefaultMaxValueRunes = 20
	// DefaultMaxPayloadBytes caps the encoded payload. WeChat sets no
	// such limit; this one keeps Redis and the worker safe from runaway
	// producers.
	DefaultMaxPayloadBytes = 64 << 10
)

// Character limits of data values by the type their key names: thing1
// is a thing, amount2 an amount. Category templates (类目模板) enforce
// them and answer errcode 47003 to a value that breaks one. WeChat does
// not document these numbers in a usable form: they come from WeChat
// staff answers on the developer forum and from secondary copies.
const (
	MaxThingRunes           = 20 // names, addresses, organisations, products
	MaxCharacterStringRunes = 32 // ASCII letters, digits and symbols only
	MaxPhraseRunes          = 5  // Chinese characters only (not checked)
	MaxPhoneNumberRunes     = 17 // digits and symbols
	MaxCarNumberRunes       = 8  // first and last may be Chinese
	MaxConstRunes           = 20 // must also be a value approved with the template

	// MaxAmountRunes is loose on purpose: an amount is one currency sign
	// and up to 12 digits (10 in some tables), may have decimals and may
	// end in 元, and no source gives one exact length.
	MaxAmountRunes = 20
	// MaxTimeRunes bounds time and date values: a 24-hour time, maybe
	// with a date, or a range joined by "~". No source gives a length.
	MaxTimeRunes = 40
)

// typeRunes maps a data key type to its character limit.
var typeRunes = map[string]int{
	"thing":            MaxThingRunes,
	"character_string": MaxCharacterStringRunes,
	"phrase":           MaxPhraseRunes,
	"phone_number":     MaxPhoneNumberRunes,
	"car_number":       MaxCarNumberRunes,
	"const":            MaxConstRunes,
	"amount":           MaxAmountRunes,
	"time":             MaxTimeRunes,
	"date":             MaxTimeRunes,
}

// FieldError is one problem with one field.
type FieldError struct {
	// Field is the JSON path of the field ("data.thing1.value"), or
	// "payload" for the payload as a whole.
	Field string
	// Problem says what is wrong ("has a line break").
	Problem string
}

// Error reads "field: problem".
func (e FieldError) Error() string { return e.Field + ": " + e.Problem }

// ValidationError lists every problem found in a payload, in field
// order. It never quotes data values, which may be personal.
type ValidationError struct {
	Errors []FieldError
}

// Error joins the problems with "; ".
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns the problems as errors, so errors.As can pick out a
// FieldError.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Errors))
	for i, fe := range e.Errors {
		errs[i] = fe
	}
	return errs
}

// Rules are the checks that depend on the deployment. The zero Rules
// checks everything that does not: see Validate.
type Rules struct {
	// AppIDs are the configured accounts. Empty skips the appid check.
	// With exactly one, appid may be empty; with several, appid is
	// required and must be one of them.
	AppIDs []string
	// MaxValueRunes caps data values whose key type is unknown; 0 means
	// DefaultMaxValueRunes.
	MaxValueRunes int
	// MaxPayloadBytes caps the encoded payload; 0 means
	// DefaultMaxPayloadBytes.
	MaxPayloadBytes int
}

// Validate checks p and returns nil or a *ValidationError naming every
// problem. Besides the appid and size rules of r:
//
//   - touser and template_id are required, at most 64 bytes of A-Z, a-z,
//     0-9, _ and -;
//   - data is required; each key is a placeholder name (a letter or _,
//     then letters, digits and _);
//   - each data value is required, without line breaks or control
//     characters, and within the character limit of its key's type (see
//     MaxThingRunes and the rest; MaxValueRunes for other types);
//     character_string values are ASCII only;
//   - a data color, if set, is #RRGGBB;
//   - url, if set, is an absolute http or https URL with a host;
//   - miniprogram, if present, has an appid;
//   - client_msg_id is at most 64 bytes of printable ASCII without
//     spaces, id at most 128 bytes without whitespace or control
//     characters, and priority one of the three or empty.
//
// The keys first and remark are accepted for older templates but WeChat
// has dropped them without an error since May 2023, so they are never
// shown. They may be empty and have no length limit; line breaks and
// control characters are refused in them as in every value.
func (r Rules) Validate(p *Payload) error {
	if p == nil {
		return &ValidationError{Errors: []FieldError{{"payload", "required"}}}
	}
	b, err := p.Marshal()
	if err != nil {
		return &ValidationError{Errors: []FieldError{{"payload", err.Error()}}}
	}
	return r.validate(p, len(b))
}

// ValidateEncoded checks p, decoded from encoded, without encoding it
// again to measure its size: the worker's path, where the task payload is
// at hand.
func (r Rules) ValidateEncoded(p *Payload, encoded []byte) error {
	if p == nil {
		return &ValidationError{Errors: []FieldError{{"payload", "required"}}}
	}
	return r.validate(p, len(encoded))
}

// Validate checks p with the zero Rules.
func (p *Payload) Validate() error { return Rules{}.Validate(p) }

// validate checks p, whose encoding is size bytes long.
func (r Rules) validate(p *Payload, size int) error {
	var ps problems
	ps.checkID(p.ID)
	r.checkAppID(&ps, p.AppID)
	ps.checkName("touser", p.ToUser, MaxToUserLen)
	ps.checkName("template_id", p.TemplateID, MaxTemplateIDLen)
	ps.checkURL(p.URL)
	ps.checkMiniProgram(p.MiniProgram)
	ps.checkData(p.Data, orDefault(r.MaxValueRunes, DefaultMaxValueRunes))
	ps.checkClientMsgID(p.ClientMsgID)
	ps.checkPriority(p.Priority)
	ps.checkSize(size, orDefault(r.MaxPayloadBytes, DefaultMaxPayloadBytes))
	return ps.err()
}

// checkAppID applies the appid rule of r.
func (r Rules) checkAppID(ps *problems, appid string) {
	switch {
	case len(r.AppIDs) == 0:
	case appid == "" && len(r.AppIDs) == 1:
	case appid == "":
		ps.add("appid", "required when several accounts are configured")
	case !slices.Contains(r.AppIDs, appid):
		ps.add("appid", fmt.Sprintf("%.40q is not a configured account", appid))
	}
}

// problems collects FieldErrors in the order they are found.
type problems []FieldError

func (ps *problems) add(field, problem string) {
	*ps = append(*ps, FieldError{Field: field, Problem: problem})
}

// err returns nil, or a *ValidationError holding the problems.
func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Errors: ps}
}

func (ps *problems) checkID(id string) {
	switch {
	case id == "":
	case len(id) > MaxIDLen:
		ps.add("id", tooLong(len(id), MaxIDLen, "bytes"))
	case !utf8.ValidString(id):
		ps.add("id", "is not valid UTF-8")
	case strings.IndexFunc(id, isSpaceOrControl) >= 0:
		ps.add("id", "has whitespace or a control character")
	}
}

// checkName checks an openid or template id.
func (ps *problems) checkName(field, s string, max int) {
	switch {
	case s == "":
		ps.add(field, "required")
	case len(s) > max:
		ps.add(field, tooLong(len(s), max, "bytes"))
	case !isName(s):
		ps.add(field, "may hold only A-Z, a-z, 0-9, _ and -")
	}
}

func (ps *problems) checkURL(s string) {
	if s == "" {
		return
	}
	u, err := url.Parse(s) // lowercases the scheme
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		ps.add("url", "must be an absolute http or https URL with a host")
	}
}

func (ps *problems) checkMiniProgram(mp *MiniProgram) {
	if mp != nil && mp.AppID == "" {
		ps.add("miniprogram.appid", "required")
	}
}

// checkData checks every entry of data, reporting them sorted by key.
func (ps *problems) checkData(data map[string]Value, maxRunes int) {
	if len(data) == 0 {
		ps.add("data", "required")
		return
	}

	start := len(*ps)
	for key, v := range data {
		ps.checkEntry(key, v, maxRunes)
	}
	slices.SortFunc((*ps)[start:], func(a, b FieldError) int {
		return cmp.Or(strings.Compare(a.Field, b.Field), strings.Compare(a.Problem, b.Problem))
	})
}

// checkEntry checks one data key and its value.
func (ps *problems) checkEntry(key string, v Value, maxRunes int) {
	if !isPlaceholder(key) {
		ps.add("data", fmt.Sprintf("key %.40q is not a placeholder name: "+
			"use letters, digits and _, not starting with a digit", key))
		return
	}

	if problem := valueProblem(key, v.Value, maxRunes); problem != "" {
		ps.add("data."+key+".value", problem)
	}
	if v.Color != "" && !isColor(v.Color) {
		ps.add("data."+key+".color", "must be #RRGGBB")
	}
}

// valueProblem says what is wrong with s as the value of key, or "".
func valueProblem(key, s string, maxRunes int) string {
	if key == "first" || key == "remark" {
		return textProblem(s)
	}
	if s == "" {
		return "required"
	}
	if problem := textProblem(s); problem != "" {
		return problem
	}
	return typeProblem(strings.TrimRight(key, "0123456789"), s, maxRunes)
}

// typeProblem applies the rules of the key type typ to s.
func typeProblem(typ, s string, maxRunes int) string {
	limit, known := typeRunes[typ]
	if !known {
		limit = maxRunes
	}

	if n := utf8.RuneCountInString(s); n > limit {
		problem := tooLong(n, limit, "characters")
		if known {
			problem += " for " + typ
		}
		return problem
	}
	if typ == "character_string" && !isASCII(s) {
		return "must be ASCII only for character_string"
	}
	return ""
}

// textProblem refuses text that WeChat would not show on one line or
// that Go's JSON encoder would turn into \u00NN-style escapes (errcode 40033).
func textProblem(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\u0085' || r == '\u2028' || r == '\u2029':
			return "has a line break"
		case unicode.IsControl(r):
			return "has a control character"
		}
	}
	return ""
}

func (ps *problems) checkClientMsgID(s string) {
	switch {
	case s == "":
	case len(s) > MaxClientMsgIDLen:
		ps.add("client_msg_id", tooLong(len(s), MaxClientMsgIDLen, "bytes"))
	case strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		ps.add("client_msg_id", "must be printable ASCII without spaces")
	}
}

func (ps *problems) checkPriority(p Priority) {
	if !p.valid() {
		ps.add("priority", `must be "critical", "default", "low" or empty`)
	}
}

func (ps *problems) checkSize(size, max int) {
	if size > max {
		ps.add("payload", fmt.Sprintf("%d bytes, over the limit of %d", size, max))
	}
}

func tooLong(n, max int, unit string) string {
	return fmt.Sprintf("%d %s, over the limit of %d", n, unit, max)
}

// orDefault returns n, or def when n is not positive.
func orDefault(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// isName reports whether s holds only A-Z, a-z, 0-9, _ and -.
func isName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// isPlaceholder reports whether s is a template placeholder name.
func isPlaceholder(s string) bool {
	if s == "" || isDigit(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' {
			return false
		}
	}
	return true
}

// isColor reports whether s is #RRGGBB in either case.
func isColor(s string) bool {
	if len(s) != 7 || s[0] != '#' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i] | 0x20 // lower case for letters
		if !isDigit(s[i]) && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return isDigit(c) || ('a' <= c|0x20 && c|0x20 <= 'z')
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isSpaceOrControl(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }
