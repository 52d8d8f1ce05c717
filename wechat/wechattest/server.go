package wechattest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Defaults that NewServer gives to zero Config fields, and the fixed
// facts of the fake.
const (
	// DefaultAppID and DefaultSecret are the one account of a server
	// whose Config.Accounts is nil. The secret is public and fake.
	DefaultAppID  = "wx5eed00000000c0de"
	DefaultSecret = "wechattest0fake0secret0000000000"
	// DefaultTokenTTL is the lifetime of an issued access_token.
	DefaultTokenTTL = 7200 * time.Second
	// DefaultOverlap is how long a replaced /cgi-bin/token token keeps
	// working, and the longest stable_token rotation window.
	DefaultOverlap = 5 * time.Minute
	// DefaultDedupeWindow is how long a (touser, client_msg_id) pair is
	// remembered.
	DefaultDedupeWindow = 10 * time.Minute
	// DefaultMaxDeliveries is how many deliveries are kept.
	DefaultMaxDeliveries = 200_000
	// FirstMsgID is the msgid of the first delivery; later ones count up.
	// Like real msgids it is above 2^53, which float64 cannot hold.
	FirstMsgID int64 = 3662956322040938501
)

// Config describes a fake server's accounts and rules. The zero Config
// works: one account (DefaultAppID), any template, real-world timings.
// NewServer copies the maps, so changing them later has no effect.
type Config struct {
	// Accounts maps appid to AppSecret. Nil means one account,
	// DefaultAppID with DefaultSecret; an empty map means none.
	Accounts map[string]string
	// TokenTTL is an access_token's lifetime, returned as expires_in in
	// whole seconds. Zero means DefaultTokenTTL.
	TokenTTL time.Duration
	// ClassicOverlap is how long the previous /cgi-bin/token token keeps
	// working once a new one is issued. Zero means DefaultOverlap; a
	// negative value means it is refused at once.
	ClassicOverlap time.Duration
	// StableRotateWindow is the last part of a stable token's life in
	// which stable_token hands out a new token; the old one works until it
	// expires, so the two overlap. Zero means the smaller of
	// DefaultOverlap and TokenTTL/4; negative means no early rotation.
	StableRotateWindow time.Duration
	// DedupeWindow is how long a delivered (touser, client_msg_id) pair
	// answers later sends with its first msgid. Zero means
	// DefaultDedupeWindow.
	DedupeWindow time.Duration
	// Templates lists the accepted template ids (others get 40037); nil
	// accepts any.
	Templates map[string]bool
	// Unfollowed openids get 43004 "require subscribe".
	Unfollowed map[string]bool
	// Blocked openids (the account's blacklist) get 43019.
	Blocked map[string]bool
	// Now is the base clock; nil means time.Now. SetNow, Advance and
	// AdvanceDay freeze or shift the server's view of it.
	Now func() time.Time
	// Seed seeds the fault draws and token values, making them
	// repeatable; zero means a fresh seed each time.
	Seed int64
	// MaxDeliveries is how many of the latest deliveries Deliveries and
	// Stats.PerKey cover. Zero means DefaultMaxDeliveries.
	MaxDeliveries int
	// Faults are active from the start, as if passed to SetFaults.
	Faults Faults
}

func (c Config) withDefaults() Config {
	if c.Accounts == nil {
		c.Accounts = map[string]string{DefaultAppID: DefaultSecret}
	}
	c.Accounts = maps.Clone(c.Accounts)
	c.Templates = maps.Clone(c.Templates)
	c.Unfollowed = maps.Clone(c.Unfollowed)
	c.Blocked = maps.Clone(c.Blocked)

	c.TokenTTL = positiveOr(c.TokenTTL, DefaultTokenTTL)
	c.ClassicOverlap = max(orDefault(c.ClassicOverlap, DefaultOverlap), 0)
	window := min(DefaultOverlap, c.TokenTTL/4)
	c.StableRotateWindow = max(orDefault(c.StableRotateWindow, window), 0)
	c.DedupeWindow = positiveOr(c.DedupeWindow, DefaultDedupeWindow)
	if c.MaxDeliveries <= 0 {
		c.MaxDeliveries = DefaultMaxDeliveries
	}
	return c
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func positiveOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Server is a fake WeChat API server: the two token endpoints, template
// send, and the /_mock/ admin routes (see the package doc). It is an
// http.Handler and is safe for concurrent use.
type Server struct {
	cfg       Config
	mux       *http.ServeMux
	done      chan struct{} // closed by Close, ends every wait
	closeOnce sync.Once
	ridSeq    atomic.Uint64
	ridSalt   uint64

	mu     sync.Mutex
	url    string
	stop   func() error
	clock  clock
	rng    *rand.Rand
	faults *activeFaults
	tokens *tokenStore
	msgID  int64
	seen   *dedupe
	limits *limiter
	rec    *recorder
	stats  Stats
}

// NewServer returns a server for cfg that is not listening anywhere: use
// it as an http.Handler, or call Start. It panics if cfg.Faults fails
// Validate.
func NewServer(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:    cfg,
		done:   make(chan struct{}),
		clock:  clock{base: cfg.Now},
		rng:    newRand(cfg.Seed),
		faults: mustActivate(cfg.Faults),
		tokens: newTokenStore(cfg.Accounts),
		msgID:  FirstMsgID,
	}
	if s.clock.base == nil {
		s.clock.base = time.Now
	}
	s.ridSalt = s.rng.Uint64()
	s.resetRecords()
	s.mux = s.routes()
	return s
}

func newRand(seed int64) *rand.Rand {
	if seed == 0 {
		return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x5eed))
}

func mustActivate(f Faults) *activeFaults {
	if err := f.Validate(); err != nil {
		panic("wechattest: invalid faults: " + err.Error())
	}
	return activate(f)
}

// resetRecords empties the counters, deliveries, dedupe memory and quota
// counts; the caller holds s.mu or is NewServer.
func (s *Server) resetRecords() {
	s.seen = newDedupe(s.cfg.DedupeWindow)
	s.limits = newLimiter()
	s.rec = newRecorder(s.cfg.MaxDeliveries)
	s.stats = Stats{TokenErrcodes: map[int]int{}, Errcodes: map[int]int{}}
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/cgi-bin/stable_token", s.handleStableToken)
	mux.HandleFunc("/cgi-bin/token", s.handleClassicToken)
	mux.HandleFunc("/cgi-bin/message/template/send", s.handleSend)
	s.adminRoutes(mux)
	return mux
}

// ServeHTTP answers one request to a WeChat or admin route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// NewTestServer starts a server for cfg on a loopback port and closes it
// when t ends. Its URL is the base URL to give the client under test.
func NewTestServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	s := NewServer(cfg)
	ts := httptest.NewServer(s)
	s.setListening(ts.URL, func() error {
		ts.Close()
		return nil
	})

	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Start listens on addr (":8080", "127.0.0.1:0") and serves in the
// background until Close.
func (s *Server) Start(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}

	if !s.setListening(baseURL(l.Addr()), func() error { return shutdown(srv) }) {
		_ = l.Close()
		return errors.New("start: the server is already listening")
	}
	go func() { _ = srv.Serve(l) }() // returns ErrServerClosed after Close
	return nil
}

func (s *Server) setListening(url string, stop func() error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.stop != nil {
		return false
	}
	s.url, s.stop = url, stop
	return true
}

// baseURL names a listener as a client should dial it: a wildcard host
// becomes loopback.
func baseURL(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return "http://" + addr.String()
	}
	return fmt.Sprintf("http://127.0.0.1:%d", tcp.Port)
}

func shutdown(srv *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// URL returns the base URL ("http://127.0.0.1:port") of a server started
// by NewTestServer or Start, and "" otherwise.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.url
}

// Close ends every pending delay at once (a SlowAfter send then answers,
// a SlowBefore one is abandoned) and stops listening. It is safe to call
// more than once.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		s.mu.Lock()
		stop := s.stop
		s.mu.Unlock()

		if stop != nil {
			err = stop()
		}
	})
	return err
}

// SetFaults replaces the active faults with f; the zero Faults turns all
// of them off. It panics if f fails Validate.
func (s *Server) SetFaults(f Faults) {
	active := mustActivate(f)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = active
}

// Faults returns a copy of the active faults.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.faults.clone()
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()

	st := s.stats
	st.TokenErrcodes = maps.Clone(st.TokenErrcodes)
	st.Errcodes = maps.Clone(st.Errcodes)
	st.PerSecond = maps.Clone(s.rec.perSecond)
	st.PerKey = maps.Clone(s.rec.perKey)
	return st
}

// Deliveries returns the kept deliveries, oldest first.
func (s *Server) Deliveries() []Delivery {
	return s.latestDeliveries(0)
}

func (s *Server) latestDeliveries(limit int) []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.rec.deliveries(limit)
}

// Reset clears the counters, deliveries, dedupe memory, quota counts and
// ErrcodeRule firings. Config, faults, tokens and the clock stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()

	s.resetRecords()
	s.faults = activate(s.faults.Faults)
}

// Now returns the time on the server's clock.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.clock.now()
}

// SetNow freezes the server's clock at t; from then on only Advance and
// AdvanceDay move it.
func (s *Server) SetNow(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()

	s.clock.set(t)
}

// Advance moves the server's clock forward by d (backward if negative).
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()

	s.clock.advance(d)
}

// AdvanceDay moves the server's clock to the next 00:00 Asia/Shanghai,
// where the daily quota starts again.
func (s *Server) AdvanceDay() {
	s.mu.Lock()
	defer s.mu.Unlock()

	now := s.clock.now()
	s.clock.advance(nextDay(now).Sub(now))
}
