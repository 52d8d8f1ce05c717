package main

import (
	"context"
	"maps"
	"strings"
	"testing"
)

const cfgAppID = "wxc0nf16000000001"

// validWorkerVars is a worker environment loadConfig accepts; the
// config cases change one thing in it.
func validWorkerVars() map[string]string {
	return map[string]string{"WECHAT_APPID": cfgAppID, "WECHAT_SECRET": secretEnv}
}

func TestValidWorkerEnvironmentLoads(t *testing.T) {
	t.Parallel()
	vars := validWorkerVars()
	cfg, err := loadConfig(func(name string) string { return vars[name] }, true)
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	if len(cfg.Accounts) != 1 || cfg.Accounts[0].AppID != cfgAppID ||
		cfg.Accounts[0].Secret != secretEnv {
		t.Errorf("accounts = %d, want the one from WECHAT_APPID and WECHAT_SECRET", len(cfg.Accounts))
	}
}

// accountsVars points the worker at an accounts file instead of
// WECHAT_APPID.
var accountsVars = map[string]string{
	"WECHAT_APPID":         "",
	"WECHAT_SECRET":        "",
	"WECHAT_ACCOUNTS_FILE": "$DIR/accounts.yaml",
}

func TestBadConfigurationNamesTheVariable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// vars change validWorkerVars; "$DIR" stands for a temp dir that
		// holds files.
		vars  map[string]string
		files map[string]string
		// want is the variable the error must start with; also is more
		// text it must hold.
		want, also string
	}{
		{name: "redis url scheme", vars: map[string]string{"REDIS_URL": "http://127.0.0.1:6379/0"},
			want: "REDIS_URL", also: "scheme"},
		{name: "redis url port with password",
			vars: map[string]string{"REDIS_URL": "redis://:" + redisPassword + "@127.0.0.1:abc/0"},
			want: "REDIS_URL", also: "***@"},
		{name: "redis url db", vars: map[string]string{"REDIS_URL": "redis://127.0.0.1:6379/x"},
			want: "REDIS_URL"},
		{name: "token endpoint", vars: map[string]string{"WECHAT_TOKEN_ENDPOINT": "stable"},
			want: "WECHAT_TOKEN_ENDPOINT"},
		{name: "concurrency zero", vars: map[string]string{"WORKER_CONCURRENCY": "0"},
			want: "WORKER_CONCURRENCY", also: `"0"`},
		{name: "concurrency word", vars: map[string]string{"WORKER_CONCURRENCY": "many"},
			want: "WORKER_CONCURRENCY"},
		{name: "shutdown shorter than http timeout",
			vars: map[string]string{"WECHAT_HTTP_TIMEOUT": "15s", "WORKER_SHUTDOWN_TIMEOUT": "10s"},
			want: "WORKER_SHUTDOWN_TIMEOUT", also: "must exceed WECHAT_HTTP_TIMEOUT (15s)"},
		{name: "shutdown equal to http timeout",
			vars: map[string]string{"WECHAT_HTTP_TIMEOUT": "10s", "WORKER_SHUTDOWN_TIMEOUT": "10s"},
			want: "WORKER_SHUTDOWN_TIMEOUT", also: "WECHAT_HTTP_TIMEOUT"},
		{name: "http timeout word", vars: map[string]string{"WECHAT_HTTP_TIMEOUT": "soon"},
			want: "WECHAT_HTTP_TIMEOUT"},
		{name: "shutdown negative", vars: map[string]string{"WORKER_SHUTDOWN_TIMEOUT": "-1s"},
			want: "WORKER_SHUTDOWN_TIMEOUT"},
		{name: "log level", vars: map[string]string{"LOG_LEVEL": "verbose"},
			want: "LOG_LEVEL", also: "debug, info, warn, error"},
		{name: "log format", vars: map[string]string{"LOG_FORMAT": "xml"}, want: "LOG_FORMAT"},
		{name: "quota reset hour", vars: map[string]string{"WECHAT_QUOTA_RESET": "25:00 Asia/Shanghai"},
			want: "WECHAT_QUOTA_RESET", also: "HH:MM"},
		{name: "quota reset zone", vars: map[string]string{"WECHAT_QUOTA_RESET": "00:00 Mars/Olympus"},
			want: "WECHAT_QUOTA_RESET", also: "unknown time zone"},
		{name: "rate negative", vars: map[string]string{"WECHAT_RATE_LIMIT": "-1"},
			want: "WECHAT_RATE_LIMIT"},
		{name: "rate not a number", vars: map[string]string{"WECHAT_RATE_LIMIT": "NaN"},
			want: "WECHAT_RATE_LIMIT"},
		{name: "burst zero", vars: map[string]string{"WECHAT_RATE_BURST": "0"},
			want: "WECHAT_RATE_BURST"},
		{name: "api base", vars: map[string]string{"WECHAT_API_BASE": "ftp://api.example.com"},
			want: "WECHAT_API_BASE"},
		{name: "max age", vars: map[string]string{"WORKER_MAX_AGE": "forever"},
			want: "WORKER_MAX_AGE"},
		{name: "no appid", vars: map[string]string{"WECHAT_APPID": "", "WECHAT_SECRET": ""},
			want: "WECHAT_APPID", also: "required"},
		{name: "no secret", vars: map[string]string{"WECHAT_SECRET": ""},
			want: "WECHAT_SECRET", also: "account " + cfgAppID + ": no secret given"},
		{name: "secret file missing",
			vars: map[string]string{"WECHAT_SECRET": "", "WECHAT_SECRET_FILE": "$DIR/nope"},
			want: "WECHAT_SECRET", also: "no such file"},
		{name: "secret and secret file",
			vars:  map[string]string{"WECHAT_SECRET_FILE": "$DIR/secret"},
			files: map[string]string{"secret": secretFile + "\n"},
			want:  "WECHAT_SECRET", also: "not both"},
		{name: "secret from file, bad log level",
			vars: map[string]string{"WECHAT_SECRET": "", "WECHAT_SECRET_FILE": "$DIR/secret",
				"LOG_LEVEL": "loud"},
			files: map[string]string{"secret": secretFile + "\n"},
			want:  "LOG_LEVEL"},
		{name: "accounts file missing", vars: accountsVars,
			want: "WECHAT_ACCOUNTS_FILE", also: "no such file"},
		{name: "accounts file and appid",
			vars:  merge(accountsVars, map[string]string{"WECHAT_APPID": cfgAppID}),
			files: map[string]string{"accounts.yaml": accountsYAML},
			want:  "WECHAT_ACCOUNTS_FILE", also: "not both"},
		{name: "accounts not yaml", vars: accountsVars,
			files: map[string]string{"accounts.yaml": "accounts: [\n  - appid: wx1\n    secret: " +
				secretAccounts1 + "\n"},
			want: "WECHAT_ACCOUNTS_FILE", also: "not valid YAML"},
		{name: "accounts empty", vars: accountsVars,
			files: map[string]string{"accounts.yaml": "accounts: []\n"},
			want:  "WECHAT_ACCOUNTS_FILE", also: "lists no accounts"},
		{name: "accounts blank file", vars: accountsVars,
			files: map[string]string{"accounts.yaml": ""},
			want:  "WECHAT_ACCOUNTS_FILE", also: "lists no accounts"},
		{name: "accounts appid empty", vars: accountsVars,
			files: map[string]string{"accounts.yaml": "accounts:\n  - secret: " + secretAccounts1 + "\n"},
			want:  "WECHAT_ACCOUNTS_FILE", also: "accounts[0].appid is empty"},
		{name: "accounts appid twice", vars: accountsVars,
			files: map[string]string{"accounts.yaml": "accounts:\n" +
				"  - {appid: wx1, secret: " + secretAccounts1 + "}\n" +
				"  - {appid: wx1, secret: " + secretAccounts2 + "}\n"},
			want: "WECHAT_ACCOUNTS_FILE", also: "appid wx1 is listed twice"},
		{name: "accounts without secret", vars: accountsVars,
			files: map[string]string{"accounts.yaml": "accounts:\n  - appid: wx1\n"},
			want:  "WECHAT_ACCOUNTS_FILE", also: "account wx1: no secret given"},
		{name: "accounts secret and secret file", vars: accountsVars,
			files: map[string]string{
				"accounts.yaml": "accounts:\n  - appid: wx1\n    secret: " + secretAccounts1 +
					"\n    secret_file: $DIR/secret\n",
				"secret": secretFile},
			want: "WECHAT_ACCOUNTS_FILE", also: "account wx1: set secret or secret_file, not both"},
		{name: "accounts secret file missing", vars: accountsVars,
			files: map[string]string{"accounts.yaml": "accounts:\n  - appid: wx1\n" +
				"    secret_file: $DIR/nope\n"},
			want: "WECHAT_ACCOUNTS_FILE", also: "account wx1"},
		{name: "accounts misspelt key", vars: accountsVars,
			files: map[string]string{"accounts.yaml": "accounts:\n  - appid: wx1\n    secret: " +
				secretAccounts1 + "\n    rte: 5\n"},
			want: "WECHAT_ACCOUNTS_FILE", also: "field rte not found"},
		{name: "accounts secret under a number key", vars: accountsVars,
			files: map[string]string{"accounts.yaml": "accounts:\n  - appid: wx1\n    burst: " +
				secretAccounts1 + "\n"},
			want: "WECHAT_ACCOUNTS_FILE", also: "line 3"},
		{name: "accounts rate negative", vars: accountsVars,
			files: map[string]string{"accounts.yaml": "accounts:\n  - appid: wx1\n    secret: " +
				secretAccounts1 + "\n    rate: -2\n"},
			want: "WECHAT_ACCOUNTS_FILE", also: "accounts[0].rate"},
		{name: "accounts burst zero", vars: accountsVars,
			files: map[string]string{"accounts.yaml": "accounts:\n  - appid: wx1\n    secret: " +
				secretAccounts1 + "\n    burst: 0\n"},
			want: "WECHAT_ACCOUNTS_FILE", also: "accounts[0].burst"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, content := range tc.files {
				writeFile(t, dir, name, strings.ReplaceAll(content, "$DIR", dir))
			}
			vars := validWorkerVars()
			for k, v := range tc.vars {
				vars[k] = strings.ReplaceAll(v, "$DIR", dir)
			}

			te := newTestEnv(t, vars)
			err := te.run(context.Background(), "worker")
			if err == nil {
				t.Fatal("worker started with a bad configuration")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "configuration: "+tc.want+": ") {
				t.Errorf("error does not start with %s:\n%s", tc.want, msg)
			}
			if !strings.Contains(msg, tc.also) {
				t.Errorf("error does not say %q:\n%s", tc.also, msg)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error names more than one problem:\n%s", msg)
			}
		})
	}
}

func merge(a, b map[string]string) map[string]string {
	m := maps.Clone(a)
	maps.Copy(m, b)
	return m
}

// accountsYAML is a valid accounts file: two accounts, the first with
// its own rate and burst, the second reading its secret from $DIR/secret.
const accountsYAML = `accounts:
  - appid: wx1111111111111111
    secret: "` + secretAccounts1 + `"
    rate: 5
    burst: 3
  - appid: wx2222222222222222
    secret_file: $DIR/secret
`

func TestAccountsFileGivesEachAccountItsSecretAndRate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "secret", "  "+secretAccounts2+"\n")
	path := writeFile(t, dir, "accounts.yaml", strings.ReplaceAll(accountsYAML, "$DIR", dir))
	vars := map[string]string{"WECHAT_ACCOUNTS_FILE": path, "WECHAT_RATE_LIMIT": "2.5"}

	cfg, err := loadConfig(func(name string) string { return vars[name] }, true)
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	if len(cfg.Accounts) != 2 {
		t.Fatalf("got %d accounts, want 2", len(cfg.Accounts))
	}
	want := []struct {
		appID, secret string
		rate          float64
		burst         int
	}{
		{"wx1111111111111111", secretAccounts1, 5, 3},
		{"wx2222222222222222", secretAccounts2, 2.5, 1},
	}
	for i, w := range want {
		a := cfg.Accounts[i]
		r := cfg.rateOf(a)
		if a.AppID != w.appID || a.Secret != w.secret {
			t.Errorf("account %d is %s with the wrong secret or appid, want %s", i, a.AppID, w.appID)
		}
		if r.PerSecond != w.rate || r.Burst != w.burst {
			t.Errorf("account %s rate %v burst %d, want %v and %d",
				a.AppID, r.PerSecond, r.Burst, w.rate, w.burst)
		}
	}
}

func TestSecretFileIsReadWithoutItsNewline(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "secret", secretFile+"\n")
	vars := map[string]string{"WECHAT_APPID": cfgAppID, "WECHAT_SECRET_FILE": path}

	cfg, err := loadConfig(func(name string) string { return vars[name] }, true)
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	if cfg.Accounts[0].Secret != secretFile {
		t.Error("the secret is not the file's content")
	}
}

func TestProducerNeedsNoSecret(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"WECHAT_APPID": cfgAppID}
	cfg, err := loadConfig(func(name string) string { return vars[name] }, false)
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	if got := cfg.appIDs(); len(got) != 1 || got[0] != cfgAppID {
		t.Errorf("appIDs = %v, want [%s]", got, cfg.appIDs())
	}
}

func TestEnvCommandListsEveryVariableAndHidesSecrets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secretPath := writeFile(t, dir, "secret", secretFile)
	accountsPath := writeFile(t, dir, "accounts.yaml", strings.ReplaceAll(accountsYAML, "$DIR", dir))
	cases := map[string]map[string]string{
		"secret":      {"WECHAT_APPID": cfgAppID, "WECHAT_SECRET": secretEnv},
		"secret file": {"WECHAT_APPID": cfgAppID, "WECHAT_SECRET_FILE": secretPath},
		"accounts":    {"WECHAT_ACCOUNTS_FILE": accountsPath},
		"redis password": {"REDIS_URL": "redis://admin:" + redisPassword + "@redis.internal:6380/2",
			"WECHAT_SECRET": secretEnv},
	}
	for name, vars := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			te := newTestEnv(t, vars)
			if err := te.run(context.Background(), "env"); err != nil {
				t.Fatalf("env: %v", err)
			}
			out := te.stdout.String()
			for _, v := range envVars {
				if !strings.Contains(out, v.Name+" ") {
					t.Errorf("env does not list %s", v.Name)
				}
			}
			if vars["WECHAT_SECRET"] != "" && !strings.Contains(out, `"(set, hidden)"`) {
				t.Error("env does not say the secret is set")
			}
			if strings.Contains(vars["REDIS_URL"], "@") &&
				!strings.Contains(out, `"redis://***@redis.internal:6380/2"`) {
				t.Errorf("env does not show the Redis URL without its password:\n%s", out)
			}
		})
	}
}

func TestRedactURLHidesPasswordsTheParserRejects(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"redis://127.0.0.1:6379/0":                 "redis://127.0.0.1:6379/0",
		"redis://:" + redisPassword + "@h:6379/0":  "redis://***@h:6379/0",
		"redis://u:p@ss/w:rd@h:6379/0":             "redis://***@h:6379/0",
		"rediss://:" + redisPassword + "@[::1":     "rediss://***@[::1",
		"redis-sentinel://:" + redisPassword + "@": "redis-sentinel://***@",
	}
	for in, want := range cases {
		got := redactURL(in)
		if got != want {
			t.Errorf("redactURL(%s…) = %q, want %q", in[:9], got, want)
		}
	}
}
