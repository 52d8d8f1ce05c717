package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/wechat/wechattest"
)

func runMock(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("mock", "Run the fake WeChat API server: token endpoints, template send, and the\n"+
		"/_mock/ admin routes (stats, deliveries, faults, clock, rotate, reset).\n"+
		"The account is WECHAT_APPID/WECHAT_SECRET, or a built-in test account.", e)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	ttl := fs.Duration("token-ttl", wechattest.DefaultTokenTTL, "access_token lifetime")
	templates := fs.String("templates", "", "comma-separated accepted template ids (default: any)")
	unfollowed := fs.String("unfollowed", "", "comma-separated openids that answer 43004")
	faults := fs.String("faults", "", "faults at start, as the JSON of POST /_mock/faults or @file")
	if err := fs.Parse(args); err != nil {
		return err
	}

	cfg := wechattest.Config{
		TokenTTL:   *ttl,
		Templates:  setOf(*templates),
		Unfollowed: setOf(*unfollowed),
	}
	if appID := e.getenv("WECHAT_APPID"); appID != "" {
		secret := e.getenv("WECHAT_SECRET")
		if secret == "" {
			return &configError{"WECHAT_SECRET", "required with WECHAT_APPID for the fake server"}
		}
		cfg.Accounts = map[string]string{appID: secret}
	}
	if *faults != "" {
		if err := parseFaults(*faults, &cfg.Faults); err != nil {
			return fmt.Errorf("--faults: %w", err)
		}
	}

	srv := wechattest.NewServer(cfg)
	if err := srv.Start(*addr); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "fake wechat listening on %s (token ttl %s); stats at %s/_mock/stats\n",
		srv.URL(), *ttl, srv.URL())
	<-ctx.Done()

	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		return fmt.Errorf("fake wechat did not stop within 10s")
	}
}

func parseFaults(v string, f *wechattest.Faults) error {
	b := []byte(v)
	if strings.HasPrefix(v, "@") {
		var err error
		if b, err = os.ReadFile(v[1:]); err != nil {
			return err
		}
	}
	return json.Unmarshal(b, f)
}

func setOf(list string) map[string]bool {
	if list == "" {
		return nil
	}
	m := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			m[s] = true
		}
	}
	return m
}
