// Package wmlog adapts a log/slog logger to Watermill's LoggerAdapter, asking the logger
// whether a level is enabled before anything is built: Watermill's own adapter turns
// the fields into attributes first, and its GoChannel and router log trace lines for
// every message, which cost allocations and stack even when nothing is printed.
package wmlog

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
)

// New returns a Watermill logger that writes to l through watermill.NewSlogLogger,
// skipping every call whose level l does not log. A nil l discards everything.
func New(l *slog.Logger) watermill.LoggerAdapter {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &adapter{l: l, wm: watermill.NewSlogLogger(l)}
}

type adapter struct {
	l  *slog.Logger
	wm watermill.LoggerAdapter
}

func (a *adapter) enabled(level slog.Level) bool { return a.l.Enabled(context.Background(), level) }

// Error logs at slog.LevelError.
func (a *adapter) Error(msg string, err error, fields watermill.LogFields) {
	if a.enabled(slog.LevelError) {
		a.wm.Error(msg, err, fields)
	}
}

// Info logs at slog.LevelInfo.
func (a *adapter) Info(msg string, fields watermill.LogFields) {
	if a.enabled(slog.LevelInfo) {
		a.wm.Info(msg, fields)
	}
}

// Debug logs at slog.LevelDebug.
func (a *adapter) Debug(msg string, fields watermill.LogFields) {
	if a.enabled(slog.LevelDebug) {
		a.wm.Debug(msg, fields)
	}
}

// Trace logs at watermill.LevelTrace.
func (a *adapter) Trace(msg string, fields watermill.LogFields) {
	if a.enabled(watermill.LevelTrace) {
		a.wm.Trace(msg, fields)
	}
}

// With returns a logger that adds fields to every line; with every level off it
// returns a itself.
func (a *adapter) With(fields watermill.LogFields) watermill.LoggerAdapter {
	if !a.enabled(slog.LevelError) {
		return a
	}
	return &adapter{l: a.l, wm: a.wm.With(fields)}
}
