package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wxnotify/wxnotify/tasks"
	"github.com/wxnotify/wxnotify/wechat"
	"github.com/wxnotify/wxnotify/wechat/wechattest"
)

// runRef is `harness ref`: an asynq server on the same queues as the
// worker whose handler either does nothing (-kind noop) or only POSTs
// the message to the fake with one token fetched at start (-kind naive),
// the ceiling a real sender is compared with.
func runRef(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ref", flag.ContinueOnError)
	kind := fs.String("kind", "noop", "noop or naive")
	addr := fs.String("redis", "", "redis host:port")
	prefix := fs.String("queue-prefix", "", "queue prefix")
	conc := fs.Int("concurrency", 50, "handlers in flight")
	api := fs.String("api", "", "fake WeChat base URL (naive)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	h, err := refHandler(ctx, *kind, *api)
	if err != nil {
		return err
	}
	srv := asynq.NewServer(asynq.RedisClientOpt{Addr: *addr}, asynq.Config{
		Concurrency:              *conc,
		Queues:                   tasks.Queues(*prefix),
		StrictPriority:           true,
		DelayedTaskCheckInterval: time.Second,
		LogLevel:                 asynq.WarnLevel,
	})
	if err := srv.Start(h); err != nil {
		return fmt.Errorf("start reference server: %w", err)
	}
	<-ctx.Done()
	srv.Shutdown()
	return nil
}

func refHandler(ctx context.Context, kind, api string) (asynq.Handler, error) {
	switch kind {
	case "noop":
		return asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil }), nil
	case "naive":
		return newNaive(ctx, api)
	}
	return nil, fmt.Errorf("unknown -kind %q", kind)
}

// naive is the bare sender: decode, POST with a fixed token, read the
// errcode. No validation, no token cache, no sent record, no result.
type naive struct {
	url    string
	client *http.Client
}

func newNaive(ctx context.Context, api string) (*naive, error) {
	appID := os.Getenv("WECHAT_APPID")
	f := wechat.NewTokenFetcher(appID, os.Getenv("WECHAT_SECRET"), wechat.WithBaseURL(api))
	tok, err := f.FetchToken(ctx)
	if err != nil {
		return nil, fmt.Errorf("naive sender: fetch token: %w", err)
	}
	return &naive{
		url:    api + "/cgi-bin/message/template/send?access_token=" + tok.Value,
		client: wechat.NewHTTPClient(10 * time.Second),
	}, nil
}

// ProcessTask implements asynq.Handler.
func (n *naive) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.DecodePayload(t.Payload())
	if err != nil {
		return err
	}
	msg := wechat.TemplateMessage{ToUser: p.ToUser, TemplateID: p.TemplateID,
		Data: map[string]wechat.DataItem{}, ClientMsgID: p.ID}
	for k, v := range p.Data {
		msg.Data[k] = wechat.DataItem{Value: v.Value}
	}
	body, _ := json.Marshal(msg)

	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return errors.New("naive sender: post failed")
	}
	defer resp.Body.Close()
	var ans struct {
		Errcode int `json:"errcode"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || ans.Errcode != 0 {
		return errors.New("naive sender: errcode " + strconv.Itoa(ans.Errcode))
	}
	return nil
}

// refEnv is the environment of a reference process.
func refEnv() map[string]string {
	return map[string]string{
		"WECHAT_APPID":  wechattest.DefaultAppID,
		"WECHAT_SECRET": wechattest.DefaultSecret,
	}
}
