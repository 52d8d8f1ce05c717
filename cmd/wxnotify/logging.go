package main

import (
	"io"
	"time"

	"github.com/rs/zerolog"
)

// newLogger builds the process logger: JSON lines for machines, or a
// console format for a person at a terminal.
func newLogger(c *config, w io.Writer, terminal bool) zerolog.Logger {
	level, err := zerolog.ParseLevel(c.LogLevel)
	if err != nil {
		level = zerolog.InfoLevel
	}
	format := c.LogFormat
	if format == "auto" {
		format = "json"
		if terminal {
			format = "console"
		}
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}
