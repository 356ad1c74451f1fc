package wmlog_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/go-eventbus/eventbus/internal/wmlog"
)

func TestLevels(t *testing.T) {
	var buf bytes.Buffer
	l := wmlog.New(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))).
		With(watermill.LogFields{"handler": "billing"})
	l.Trace("trace line", watermill.LogFields{"n": 1})
	l.Debug("debug line", nil)
	l.Info("info line", watermill.LogFields{"topic": "orders"})
	l.Error("error line", errors.New("boom"), nil)
	out := buf.String()
	if strings.Contains(out, "trace line") || strings.Contains(out, "debug line") {
		t.Fatalf("lines below the level were written:\n%s", out)
	}
	for _, want := range []string{"info line", "topic=orders", "handler=billing", "error line", "error=boom"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

func TestDisabledCostsNothing(t *testing.T) {
	l := wmlog.New(nil)
	fields := watermill.LogFields{"message_uuid": "x", "topic": "t"}
	if n := testing.AllocsPerRun(100, func() { l.Trace("sending", fields); l.With(fields).Debug("d", fields) }); n != 0 {
		t.Fatalf("%v allocations per disabled call", n)
	}
}
