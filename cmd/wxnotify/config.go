package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // WECHAT_QUOTA_RESET zones work in images without a tz database

	"github.com/hibiken/asynq"
	"go.yaml.in/yaml/v3"

	"github.com/wxnotify/wxnotify/tasks"
	"github.com/wxnotify/wxnotify/wechat"
	"github.com/wxnotify/wxnotify/worker"
)

// envVar documents one environment variable. The table is the single
// source for `wxnotify help env`, the README's configuration table and
// the docker-compose test.
type envVar struct {
	Name    string
	Default string
	Usage   string
}

var envVars = []envVar{
	{"REDIS_URL", "redis://127.0.0.1:6379/0",
		"Redis of the queue and the token cache: redis://, rediss:// (TLS), " +
			"redis-socket://, redis-sentinel://"},
	{"WECHAT_APPID", "", "appid of the single account to send for"},
	{"WECHAT_SECRET", "", "AppSecret of that account (never printed)"},
	{"WECHAT_SECRET_FILE", "", "read WECHAT_SECRET from this file instead (Docker/K8s secrets)"},
	{"WECHAT_ACCOUNTS_FILE", "", "YAML file listing several accounts (appid, secret or " +
		"secret_file); replaces WECHAT_APPID/WECHAT_SECRET"},
	{"WECHAT_API_BASE", wechat.DefaultBaseURL, "base URL of the WeChat API (a proxy, the fake server)"},
	{"WECHAT_TOKEN_ENDPOINT", "stable_token", "token endpoint: stable_token or token (classic)"},
	{"WECHAT_HTTP_TIMEOUT", "10s", "timeout of one WeChat HTTP call"},
	{"WORKER_CONCURRENCY", "50", "sends in flight per worker process"},
	{"WORKER_SHUTDOWN_TIMEOUT", "30s", "on SIGTERM, how long running sends may finish; " +
		"must exceed WECHAT_HTTP_TIMEOUT"},
	{"WECHAT_RATE_LIMIT", "0", "sends per second per account across all workers; 0 is no limit " +
		"(an accounts file may set rate per account)"},
	{"WECHAT_RATE_BURST", "1", "sends allowed at once above the rate after a quiet spell"},
	{"WECHAT_QUOTA_RESET", "00:00 Asia/Shanghai",
		"when the daily quota resets (WeChat does not document it)"},
	{"WECHAT_QUOTA_PROBE_INTERVAL", "1h", "while the daily quota is used up, one probe send per interval"},
	{"WORKER_RETRY_BASE", "10s", "first retry backoff; doubles per retry, with full jitter"},
	{"WORKER_RETRY_CAP", "1h", "longest backoff between two retries"},
	{"WORKER_MAX_AGE", "72h", "archive a message enqueued longer ago than this (off: no limit)"},
	{"WORKER_ACCOUNT_STOP", "10m",
		"after an account/configuration errcode, wait this long before one probe send"},
	{"WORKER_TEMPLATE_STOP", "1h", "after 43116 (template banned), leave the template alone this long"},
	{"WORKER_SLOWDOWN", "1m", "after 45011 (minute quota), the whole account pauses this long"},
	{"WORKER_RECIPIENT_DELAY", "1m", "after 43117 (openid too frequent), that message waits this long"},
	{"QUEUE_PREFIX", tasks.DefaultQueuePrefix, "queue names are PREFIX:critical, PREFIX:default, PREFIX:low"},
	{"REDIS_KEY_PREFIX", "wxnotify:", "prefix of wxnotify's own Redis keys (tokens, stops, sent records)"},
	{"LOG_LEVEL", "info", "debug, info, warn or error"},
	{"LOG_FORMAT", "auto", "json, console, or auto (console on a terminal, json otherwise)"},
}

// account is one configured WeChat account. Secret is never printed.
type account struct {
	AppID      string `yaml:"appid"`
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// Rate and Burst override WECHAT_RATE_LIMIT and WECHAT_RATE_BURST
	// for this account; nil means the global value.
	Rate  *float64 `yaml:"rate"`
	Burst *int     `yaml:"burst"`
}

// config is everything the subcommands read from the environment,
// validated once.
type config struct {
	RedisURL        string
	RedisOpt        asynq.RedisConnOpt
	Accounts        []account
	APIBase         string
	TokenEndpoint   wechat.TokenEndpoint
	HTTPTimeout     time.Duration
	Concurrency     int
	ShutdownTimeout time.Duration
	QueuePrefix     string
	KeyPrefix       string
	Rate            float64
	Burst           int
	Backoff         worker.Backoff
	Policy          worker.Policy
	LogLevel        string
	LogFormat       string
}

// configError names the variable and what is wrong with it.
type configError struct {
	Name, Problem string
}

func (e *configError) Error() string { return e.Name + ": " + e.Problem }

// loadConfig reads the environment through getenv. needAccounts is false
// for producers, which only need Redis.
func loadConfig(getenv func(string) string, needAccounts bool) (*config, error) {
	get := func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return defaultOf(name)
	}

	c := &config{
		RedisURL:    get("REDIS_URL"),
		APIBase:     get("WECHAT_API_BASE"),
		QueuePrefix: get("QUEUE_PREFIX"),
		KeyPrefix:   get("REDIS_KEY_PREFIX"),
		LogLevel:    get("LOG_LEVEL"),
		LogFormat:   get("LOG_FORMAT"),
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	opt, err := asynq.ParseRedisURI(c.RedisURL)
	if err != nil {
		add(&configError{"REDIS_URL", "not a redis URL: " + redactURLError(err, c.RedisURL)})
	}
	c.RedisOpt = opt

	ep, err := wechat.ParseTokenEndpoint(get("WECHAT_TOKEN_ENDPOINT"))
	if err != nil {
		add(&configError{"WECHAT_TOKEN_ENDPOINT", err.Error()})
	}
	c.TokenEndpoint = ep

	c.HTTPTimeout, err = parseDuration("WECHAT_HTTP_TIMEOUT", get("WECHAT_HTTP_TIMEOUT"))
	add(err)
	c.ShutdownTimeout, err = parseDuration("WORKER_SHUTDOWN_TIMEOUT", get("WORKER_SHUTDOWN_TIMEOUT"))
	add(err)
	if err == nil && c.HTTPTimeout > 0 && c.ShutdownTimeout <= c.HTTPTimeout {
		add(&configError{"WORKER_SHUTDOWN_TIMEOUT", fmt.Sprintf(
			"%s must exceed WECHAT_HTTP_TIMEOUT (%s), or a send cut off by shutdown may be sent twice",
			c.ShutdownTimeout, c.HTTPTimeout)})
	}
	c.Concurrency, err = parsePositive("WORKER_CONCURRENCY", get("WORKER_CONCURRENCY"))
	add(err)

	errs = append(errs, c.loadPolicy(get)...)

	if !strings.HasPrefix(c.APIBase, "http://") && !strings.HasPrefix(c.APIBase, "https://") {
		add(&configError{"WECHAT_API_BASE", fmt.Sprintf("%q is not an http(s) URL", c.APIBase)})
	}
	add(checkOneOf("LOG_LEVEL", c.LogLevel, "debug", "info", "warn", "error"))
	add(checkOneOf("LOG_FORMAT", c.LogFormat, "json", "console", "auto"))

	c.Accounts, err = loadAccounts(getenv, needAccounts)
	add(err)

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// loadPolicy reads the delivery policy: pacing, backoff and waits.
func (c *config) loadPolicy(get func(string) string) []error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	c.Rate, err = parseNonNegative("WECHAT_RATE_LIMIT", get("WECHAT_RATE_LIMIT"))
	add(err)
	c.Burst, err = parsePositive("WECHAT_RATE_BURST", get("WECHAT_RATE_BURST"))
	add(err)

	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{"WORKER_RETRY_BASE", &c.Backoff.Base},
		{"WORKER_RETRY_CAP", &c.Backoff.Cap},
		{"WECHAT_QUOTA_PROBE_INTERVAL", &c.Policy.QuotaProbeInterval},
		{"WORKER_ACCOUNT_STOP", &c.Policy.AccountStop},
		{"WORKER_TEMPLATE_STOP", &c.Policy.TemplateStop},
		{"WORKER_SLOWDOWN", &c.Policy.SlowDown},
		{"WORKER_RECIPIENT_DELAY", &c.Policy.RecipientDelay},
	}
	for _, d := range durations {
		*d.dst, err = parseDuration(d.name, get(d.name))
		add(err)
	}
	if v := get("WORKER_MAX_AGE"); v == "off" {
		c.Policy.MaxAge = -1
	} else {
		c.Policy.MaxAge, err = parseDuration("WORKER_MAX_AGE", v)
		add(err)
	}
	c.Policy.QuotaReset, err = parseQuotaReset(get("WECHAT_QUOTA_RESET"))
	add(err)
	return errs
}

// parseQuotaReset reads "HH:MM Zone", e.g. "00:00 Asia/Shanghai".
func parseQuotaReset(v string) (worker.QuotaReset, error) {
	bad := func(why string) (worker.QuotaReset, error) {
		return worker.QuotaReset{}, &configError{"WECHAT_QUOTA_RESET",
			fmt.Sprintf("%q %s; want HH:MM and a time zone, e.g. \"00:00 Asia/Shanghai\"", v, why)}
	}
	clock, zone, _ := strings.Cut(strings.TrimSpace(v), " ")
	t, err := time.Parse("15:04", clock)
	if err != nil {
		return bad("has no valid HH:MM")
	}
	loc := time.UTC
	if zone = strings.TrimSpace(zone); zone != "" {
		if loc, err = time.LoadLocation(zone); err != nil {
			return bad("names an unknown time zone")
		}
	}
	return worker.QuotaReset{Hour: t.Hour(), Minute: t.Minute(), Location: loc}, nil
}

func parseNonNegative(name, v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !validRate(f) {
		return 0, &configError{name, fmt.Sprintf("%q is not a number of 0 or more", v)}
	}
	return f, nil
}

// rateOf is an account's rate limit: its own from the accounts file, or
// the global one.
func (c *config) rateOf(a account) worker.Rate {
	r := worker.Rate{PerSecond: c.Rate, Burst: c.Burst}
	if a.Rate != nil {
		r.PerSecond = *a.Rate
	}
	if a.Burst != nil {
		r.Burst = *a.Burst
	}
	return r
}

func defaultOf(name string) string {
	for _, v := range envVars {
		if v.Name == name {
			return v.Default
		}
	}
	return ""
}

// appIDs lists the configured accounts, for payload validation.
func (c *config) appIDs() []string {
	ids := make([]string, len(c.Accounts))
	for i, a := range c.Accounts {
		ids[i] = a.AppID
	}
	return ids
}

// loadAccounts reads either WECHAT_ACCOUNTS_FILE or WECHAT_APPID with
// WECHAT_SECRET / WECHAT_SECRET_FILE. Producers (needSecrets false) may
// name appids without secrets; they are used only to validate payloads.
func loadAccounts(getenv func(string) string, needSecrets bool) ([]account, error) {
	file := strings.TrimSpace(getenv("WECHAT_ACCOUNTS_FILE"))
	appID := strings.TrimSpace(getenv("WECHAT_APPID"))

	var accts []account
	switch {
	case file != "" && appID != "":
		return nil, &configError{"WECHAT_ACCOUNTS_FILE",
			"set either it or WECHAT_APPID, not both"}
	case file != "":
		var err error
		if accts, err = readAccountsFile(file); err != nil {
			return nil, err
		}
	case appID != "":
		accts = []account{{
			AppID:      appID,
			Secret:     strings.TrimSpace(getenv("WECHAT_SECRET")),
			SecretFile: strings.TrimSpace(getenv("WECHAT_SECRET_FILE")),
		}}
	case needSecrets:
		return nil, &configError{"WECHAT_APPID",
			"required (or WECHAT_ACCOUNTS_FILE): the account to send for"}
	}

	if !needSecrets {
		return accts, nil
	}
	return accts, resolveSecrets(accts, file != "")
}

// accountsDoc is the layout of WECHAT_ACCOUNTS_FILE.
type accountsDoc struct {
	Accounts []account `yaml:"accounts"`
}

// readAccountsFile decodes and checks the accounts file. Unknown keys are
// errors, so a misspelt rate or secret_file is not silently ignored.
func readAccountsFile(path string) ([]account, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &configError{"WECHAT_ACCOUNTS_FILE", err.Error()}
	}
	var doc accountsDoc
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, &configError{"WECHAT_ACCOUNTS_FILE",
			path + ": not valid YAML: " + yamlProblem(err)}
	}
	if len(doc.Accounts) == 0 {
		return nil, &configError{"WECHAT_ACCOUNTS_FILE", path + ": lists no accounts"}
	}
	if problem := checkAccounts(doc.Accounts); problem != "" {
		return nil, &configError{"WECHAT_ACCOUNTS_FILE", path + ": " + problem}
	}
	return doc.Accounts, nil
}

// checkAccounts reports the first account with a missing or repeated
// appid or an out-of-range rate or burst, or "" when all are fine.
func checkAccounts(accts []account) string {
	seen := map[string]bool{}
	for i, a := range accts {
		switch {
		case a.AppID == "":
			return fmt.Sprintf("accounts[%d].appid is empty", i)
		case seen[a.AppID]:
			return fmt.Sprintf("appid %s is listed twice", a.AppID)
		case a.Rate != nil && !validRate(*a.Rate):
			return fmt.Sprintf("accounts[%d].rate: %v is not a number of 0 or more", i, *a.Rate)
		case a.Burst != nil && *a.Burst < 1:
			return fmt.Sprintf("accounts[%d].burst: %d is not a positive whole number", i, *a.Burst)
		}
		seen[a.AppID] = true
	}
	return ""
}

// yamlValue matches the excerpt of a value that yaml quotes in a type
// error ("cannot unmarshal !!str `abcdefg...` into int").
var yamlValue = regexp.MustCompile("`[^`]*`")

// yamlProblem is a YAML error without the values it quotes, which may
// be a secret put under the wrong key, and without Go package names.
func yamlProblem(err error) string {
	msg := yamlValue.ReplaceAllString(err.Error(), "(value hidden)")
	msg = strings.ReplaceAll(msg, "main.", "")
	return strings.Join(strings.Fields(msg), " ")
}

// validRate reports whether r is a usable sends-per-second rate.
func validRate(r float64) bool { return r >= 0 && !math.IsInf(r, 0) }

// resolveSecrets fills Secret from SecretFile and checks every account
// has one. Errors name the account, never the secret.
func resolveSecrets(accts []account, fromFile bool) error {
	name := "WECHAT_SECRET"
	if fromFile {
		name = "WECHAT_ACCOUNTS_FILE"
	}
	for i := range accts {
		a := &accts[i]
		if a.Secret != "" && a.SecretFile != "" {
			return &configError{name, "account " + a.AppID + ": set secret or secret_file, not both"}
		}
		if a.SecretFile != "" {
			b, err := os.ReadFile(a.SecretFile)
			if err != nil {
				return &configError{name, "account " + a.AppID + ": " + err.Error()}
			}
			a.Secret = strings.TrimSpace(string(b))
		}
		if a.Secret == "" {
			return &configError{name, "account " + a.AppID + ": no secret given"}
		}
	}
	return nil
}

func parseDuration(name, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, &configError{name, fmt.Sprintf("%q is not a positive duration such as 10s or 2m", v)}
	}
	return d, nil
}

func parsePositive(name, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, &configError{name, fmt.Sprintf("%q is not a positive whole number", v)}
	}
	return n, nil
}

func checkOneOf(name, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return &configError{name, fmt.Sprintf("%q is not one of %s", v, strings.Join(allowed, ", "))}
}

// redactURLError keeps a Redis URL's password out of an error message.
func redactURLError(err error, rawURL string) string {
	msg := err.Error()
	if info := userInfo(rawURL); info != "" {
		msg = strings.ReplaceAll(msg, info, "***")
	}
	return msg
}

// redactURL is rawURL with its user and password hidden, for display.
// It works on URLs that do not parse, which may hold a password too.
func redactURL(rawURL string) string {
	if info := userInfo(rawURL); info != "" {
		return strings.Replace(rawURL, info, "***", 1)
	}
	return rawURL
}

// userInfo returns the "user:password" part of rawURL, or "". It ends at
// the last "@", since passwords are often not escaped and may hold "@" or
// "/"; a Redis URL has no "@" after its host.
func userInfo(rawURL string) string {
	_, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return ""
	}
	if i := strings.LastIndex(rest, "@"); i > 0 {
		return rest[:i]
	}
	return ""
}
