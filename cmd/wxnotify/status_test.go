package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/internal/testredis"
)

func TestStatusShowsAStopAndResumeClearsIt(t *testing.T) {
	t.Parallel()
	rds := testredis.New(t)
	ctx := context.Background()
	until := time.Now().Add(time.Hour).UnixMilli()
	stop := `{"kind":"stopped","reason":"errcode 40164: worker ip is not on the account's api whitelist",` +
		`"code":40164,"until":` + strconv.FormatInt(until, 10) + `}`
	key := rds.Prefix + ":{wxstatus000000001}:stop"
	if err := rds.Client.Set(ctx, key, stop, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}

	te := newTestEnv(t, redisVars(rds, map[string]string{"WECHAT_APPID": "wxstatus000000001"}))
	if err := te.run(ctx, "status"); err != nil {
		t.Fatalf("status: %v", err)
	}
	out := te.stdout.String()
	for _, want := range []string{rds.Prefix + ":critical", "account wxstatus000000001: stopped until",
		"errcode 40164", "wxnotify resume --appid wxstatus000000001"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}

	if err := te.run(ctx, "resume", "--appid", "wxstatus000000001"); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if n, _ := rds.Client.Exists(ctx, key).Result(); n != 0 {
		t.Fatal("resume left the stop in place")
	}
	after := newTestEnv(t, redisVars(rds, map[string]string{"WECHAT_APPID": "wxstatus000000001"}))
	if err := after.run(ctx, "status"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(after.stdout.String(), "account wxstatus000000001: sending") {
		t.Errorf("after resume, status says:\n%s", after.stdout.String())
	}
}

func TestResumeNeedsAnAppID(t *testing.T) {
	t.Parallel()
	te := newTestEnv(t, map[string]string{"REDIS_URL": testredis.URL()})
	err := te.run(context.Background(), "resume")
	if err == nil || !strings.Contains(err.Error(), "--appid") {
		t.Fatalf("resume without --appid: %v, want an error naming --appid", err)
	}
}
