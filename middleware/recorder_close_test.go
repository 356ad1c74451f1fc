package middleware_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// lateStore takes every write, after delay, whatever its context says (a store call
// that finishes although its context ended), counting the changes it stored.
type lateStore struct {
	modelevent.Store
	delay  time.Duration
	stored atomic.Int64
}

func (s *lateStore) Write(_ context.Context, changes []modelevent.Change) error {
	time.Sleep(s.delay)
	s.stored.Add(int64(len(changes)))
	return nil
}

// TestRecorderCloseNothingLost: Close returns nil when every change was stored, even
// when its ctx ended first — already done when Close is called with nothing queued, or
// ending while the last write is in flight and the store takes it anyway — and an
// error counting the changes only when some were not stored.
func TestRecorderCloseNothingLost(t *testing.T) {
	t.Run("ctx done, nothing queued", func(t *testing.T) {
		store := &lateStore{}
		rec, err := middleware.NewRecorder(store, middleware.RecorderConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if err := rec.Record(context.Background(), true, consumedChange("m1")); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := rec.Close(ctx); err != nil || store.stored.Load() != 1 {
			t.Fatalf("Close with every change stored and its ctx done: %v (%d stored)", err, store.stored.Load())
		}
	})
	t.Run("ctx ends during the last write", func(t *testing.T) {
		store := &lateStore{delay: 200 * time.Millisecond}
		rec, err := middleware.NewRecorder(store, middleware.RecorderConfig{Mode: middleware.RecordBuffered})
		if err != nil {
			t.Fatal(err)
		}
		if err := rec.Record(context.Background(), false, consumedChange("m1"), consumedChange("m2")); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := rec.Close(ctx); err != nil || store.stored.Load() != 2 {
			t.Fatalf("Close whose ctx ended while the store took the last write: %v (%d stored)", err, store.stored.Load())
		}
	})
}
