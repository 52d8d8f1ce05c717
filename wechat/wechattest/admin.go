package wechattest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// adminError is the body of a refused admin request.
type adminError struct {
	Error string `json:"error"`
}

// adminOK is the body of an admin request that changed something.
type adminOK struct {
	Status string `json:"status"`
}

// clockRequest is the body of POST /_mock/clock. The steps apply in field
// order; any may be left out.
type clockRequest struct {
	// Now freezes the clock at this instant (RFC 3339).
	Now *time.Time `json:"now,omitempty"`
	// Advance moves the clock by a duration such as "90s" or "-1h".
	Advance wireDuration `json:"advance,omitempty"`
	// AdvanceDay moves the clock to the next 00:00 Asia/Shanghai.
	AdvanceDay bool `json:"advance_day,omitempty"`
}

// clockBody reports the server's clock.
type clockBody struct {
	Now time.Time `json:"now"`
	// Day is the Asia/Shanghai date the daily quota counts.
	Day string `json:"day"`
}

func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_mock/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("GET /_mock/deliveries", s.handleDeliveries)
	mux.HandleFunc("GET /_mock/faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("POST /_mock/faults", s.handleSetFaults)
	mux.HandleFunc("POST /_mock/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.Reset()
		writeJSON(w, http.StatusOK, adminOK{Status: "ok"})
	})
	mux.HandleFunc("POST /_mock/rotate", s.handleRotate)
	mux.HandleFunc("GET /_mock/clock", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, describeClock(s.Now()))
	})
	mux.HandleFunc("POST /_mock/clock", s.handleClock)
}

func (s *Server) handleDeliveries(w http.ResponseWriter, r *http.Request) {
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			refuse(w, http.StatusBadRequest, fmt.Sprintf("limit %q is not a count", v))
			return
		}
		limit = n
	}
	writeJSON(w, http.StatusOK, s.latestDeliveries(limit))
}

func (s *Server) handleSetFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if err := decodeBody(r, &f); err != nil {
		refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := f.Validate(); err != nil {
		refuse(w, http.StatusBadRequest, err.Error())
		return
	}

	s.SetFaults(f)
	writeJSON(w, http.StatusOK, s.Faults())
}

func (s *Server) handleRotate(w http.ResponseWriter, r *http.Request) {
	appid := r.URL.Query().Get("appid")
	if !s.hasAccount(appid) {
		refuse(w, http.StatusNotFound, fmt.Sprintf("no account with appid %q", appid))
		return
	}

	s.RotateToken(appid)
	writeJSON(w, http.StatusOK, adminOK{Status: "ok"})
}

func (s *Server) handleClock(w http.ResponseWriter, r *http.Request) {
	var req clockRequest
	if err := decodeBody(r, &req); err != nil {
		refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, describeClock(s.moveClock(req)))
}

// moveClock applies req in one step and returns the resulting time.
func (s *Server) moveClock(req clockRequest) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()

	if req.Now != nil {
		s.clock.set(*req.Now)
	}
	s.clock.advance(time.Duration(req.Advance))
	if req.AdvanceDay {
		now := s.clock.now()
		s.clock.advance(nextDay(now).Sub(now))
	}
	return s.clock.now()
}

func describeClock(now time.Time) clockBody {
	return clockBody{Now: now, Day: now.In(shanghai).Format(time.DateOnly)}
}

// decodeBody reads one JSON value into v, refusing unknown fields; an
// empty body leaves v as it is.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("decode request body: %w", err)
	}
	return nil
}

func refuse(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, adminError{Error: msg})
}
