package wechattest

import "time"

// shanghai is Asia/Shanghai. China has kept UTC+8 without daylight saving
// since 1991, so a fixed zone is exact and needs no tzdata on the host.
var shanghai = time.FixedZone("CST", 8*60*60)

// clock is the server's view of time: a base clock shifted by an offset,
// or frozen at one instant. The server's mutex guards it.
type clock struct {
	base   func() time.Time
	offset time.Duration
	frozen bool
	at     time.Time
}

func (c *clock) now() time.Time {
	if c.frozen {
		return c.at
	}
	return c.base().Add(c.offset)
}

// set freezes the clock at t; only advance moves it from then on.
func (c *clock) set(t time.Time) {
	c.frozen = true
	c.at = t
}

func (c *clock) advance(d time.Duration) {
	if c.frozen {
		c.at = c.at.Add(d)
		return
	}
	c.offset += d
}

// nextDay returns the first instant of the Asia/Shanghai day after t.
func nextDay(t time.Time) time.Time {
	y, m, d := t.In(shanghai).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, shanghai)
}

// dayNumber numbers the Asia/Shanghai calendar day that holds t.
func dayNumber(t time.Time) int64 {
	return floorDiv(t.Unix()+8*60*60, 24*60*60)
}

// minuteNumber numbers the calendar minute that holds t. Minutes begin at
// the same instants in every whole-hour zone, UTC+8 included.
func minuteNumber(t time.Time) int64 {
	return floorDiv(t.Unix(), 60)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
