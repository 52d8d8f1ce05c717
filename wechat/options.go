package wechat

import (
	"net"
	"net/http"
	"strings"
	"time"
)

// DefaultBaseURL is WeChat's API host. Paths such as /cgi-bin/token are
// joined to it.
const DefaultBaseURL = "https://api.weixin.qq.com"

// DefaultHTTPTimeout bounds one whole HTTP exchange, body included, when
// no client is given with WithHTTPClient.
const DefaultHTTPTimeout = 10 * time.Second

// Option configures a Client or a TokenFetcher. Options apply in order,
// so a later one wins.
type Option func(*config)

// config is what the options set. The zero value is not usable; start
// from newConfig.
type config struct {
	baseURL    string
	httpClient *http.Client
	now        func() time.Time
	endpoint   TokenEndpoint
}

// WithBaseURL sends requests to u instead of DefaultBaseURL, for example
// to a fake server in tests. A trailing slash is ignored; an empty u
// restores the default.
func WithBaseURL(u string) Option {
	return func(c *config) {
		c.baseURL = strings.TrimRight(u, "/")
		if c.baseURL == "" {
			c.baseURL = DefaultBaseURL
		}
	}
}

// WithHTTPClient makes requests with hc, whose Timeout and Transport are
// used as they are. A nil hc restores the default: a client with
// DefaultHTTPTimeout and a transport that keeps up to 256 idle
// connections to the API host for many concurrent sends.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) { c.httpClient = hc }
}

// WithClock replaces time.Now, which a TokenFetcher uses to turn
// expires_in into Token.ExpiresAt; a Client reads no clock. A nil now
// restores time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		c.now = now
		if now == nil {
			c.now = time.Now
		}
	}
}

// WithTokenEndpoint chooses the token endpoint of a TokenFetcher; the
// default is StableTokenEndpoint. A Client ignores it.
func WithTokenEndpoint(e TokenEndpoint) Option {
	return func(c *config) { c.endpoint = e }
}

func newConfig(opts []Option) config {
	c := config{baseURL: DefaultBaseURL, now: time.Now, endpoint: StableTokenEndpoint}
	for _, opt := range opts {
		opt(&c)
	}

	if c.httpClient == nil {
		c.httpClient = newDefaultHTTPClient()
	}
	return c
}

// newDefaultHTTPClient builds the client used when none is given. Each
// step of a request has its own bound so that a stalled dial or TLS
// handshake fails early, well inside the overall timeout.
func newDefaultHTTPClient() *http.Client { return NewHTTPClient(DefaultHTTPTimeout) }

// NewHTTPClient returns the client WithHTTPClient(nil) would use, with
// timeout bounding one whole exchange: dial and TLS within 5 s, up to 256
// idle connections to the API host for many concurrent sends, proxy from
// the environment. A timeout of zero or less means DefaultHTTPTimeout.
func NewHTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultHTTPTimeout
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Timeout: timeout, Transport: transport}
}
