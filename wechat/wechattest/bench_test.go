package wechattest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkSendParallel pushes template sends through a real loopback
// connection from many goroutines and reports the rate the fake sustains.
func BenchmarkSendParallel(b *testing.B) {
	srv := NewTestServer(b, Config{})
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 256},
		Timeout:   10 * time.Second,
	}
	token := benchToken(b, client, srv.URL())
	target := srv.URL() + "/cgi-bin/message/template/send?access_token=" +
		url.QueryEscape(token)

	var seq atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := strconv.FormatInt(seq.Add(1), 10)
			body := []byte(`{"touser":"o-bench","template_id":"t","client_msg_id":"` + id +
				`","data":{"thing1":{"value":"bench"}}}`)
			benchPost(b, client, target, body)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")

	if st := srv.Stats(); st.Deliveries != b.N {
		b.Fatalf("%d deliveries for %d sends", st.Deliveries, b.N)
	}
}

func benchToken(b *testing.B, client *http.Client, base string) string {
	q := url.Values{
		"grant_type": {"client_credential"},
		"appid":      {DefaultAppID},
		"secret":     {DefaultSecret},
	}
	resp, err := client.Get(base + "/cgi-bin/token?" + q.Encode())
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()

	var r reply
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &r); err != nil || r.AccessToken == "" {
		b.Fatalf("token: %s (%v)", body, err)
	}
	return r.AccessToken
}

func benchPost(b *testing.B, client *http.Client, target string, body []byte) {
	resp, err := client.Post(target, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
