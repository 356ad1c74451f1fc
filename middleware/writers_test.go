package middleware_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestWritersKeepARowsChangesInOrder: with several writers, the changes of one row go
// to one writer, so a row's later change is never overtaken by its earlier one, and
// listeners are still called one at a time. On PostgreSQL, where writers overlap.
func TestWritersKeepARowsChangesInOrder(t *testing.T) {
	store, err := modelevent.Open(context.Background(), "postgres", testenv.FreshPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec, err := middleware.NewRecorder(store, middleware.RecorderConfig{Mode: middleware.RecordBuffered, Backend: "memory", Writers: 4})
	if err != nil {
		t.Fatal(err)
	}
	var inside, overlaps, heard atomic.Int64
	rec.OnChange(func(context.Context, modelevent.Change) {
		if inside.Add(1) > 1 {
			overlaps.Add(1)
		}
		heard.Add(1)
		inside.Add(-1)
	})
	const n = 500
	start := time.Now().Add(-time.Second)
	for i := 0; i < n; i++ {
		e := modelevent.ModelEvent{MessageUUID: fmt.Sprintf("msg-%d", i), Direction: modelevent.Consumed, Handler: "billing", Topic: "orders"}
		failed, ok := e, e
		failed.Status, failed.Attempts, failed.LastError = modelevent.StatusRetrying, 1, "timeout"
		ok.Status, ok.Attempts = modelevent.StatusSucceeded, 2
		if err := rec.Record(context.Background(), false,
			modelevent.Change{Event: failed, NewAttempts: []modelevent.Attempt{{StartedAt: start, Duration: time.Millisecond, Error: "timeout"}}}); err != nil {
			t.Fatal(err)
		}
		if err := rec.Record(context.Background(), false,
			modelevent.Change{Event: ok, NewAttempts: []modelevent.Attempt{{StartedAt: start.Add(time.Millisecond), Duration: time.Millisecond}}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rec.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := store.Stats(context.Background(), modelevent.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := st.ByStatus[modelevent.StatusSucceeded]; got != n || st.Total != n {
		t.Errorf("rows: %d succeeded of %d, want %d of %d (a later change overtaken by an earlier one)", got, st.Total, n, n)
	}
	if overlaps.Load() > 0 || heard.Load() != 2*n {
		t.Errorf("listeners: %d overlapping calls, %d changes heard, want 0 and %d", overlaps.Load(), heard.Load(), 2*n)
	}
}
