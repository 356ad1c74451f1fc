package middleware_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// hangingStore blocks its first n writes until their context ends; later writes
// succeed. It keeps the contexts it was given.
type hangingStore struct {
	modelevent.Store
	hang int

	mu   sync.Mutex
	ctxs []context.Context
	took []time.Duration
}

func (s *hangingStore) writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ctxs)
}

func (s *hangingStore) Write(ctx context.Context, _ []modelevent.Change) error {
	s.mu.Lock()
	s.ctxs = append(s.ctxs, ctx)
	hang := len(s.ctxs) <= s.hang
	s.mu.Unlock()
	if !hang {
		return ctx.Err()
	}
	start := time.Now()
	<-ctx.Done()
	s.mu.Lock()
	s.took = append(s.took, time.Since(start))
	s.mu.Unlock()
	return ctx.Err()
}

// TestWriteTimeoutEndsEachWrite: a store write that hangs is cancelled after
// WriteTimeout, every time, and the writer's next write gets a live context (the writer
// reuses one context between writes that end in time).
func TestWriteTimeoutEndsEachWrite(t *testing.T) {
	const timeout = 100 * time.Millisecond
	store := &hangingStore{hang: 2}
	rec, err := middleware.NewRecorder(store, middleware.RecorderConfig{WriteTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close(context.Background())
	// The first two tries hang until their timeout; the third (after the backoff) is
	// stored. The caller's own wait ends at WriteTimeout too, before the third.
	err = rec.Record(context.Background(), true, consumedChange("m1"))
	if !errors.Is(err, middleware.ErrNotRecorded) {
		t.Fatalf("Record over a hanging store: err = %v, want ErrNotRecorded", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !rec.Healthy() || store.writes() < 3 { // the third try of m1 was stored
		if time.Now().After(deadline) {
			t.Fatalf("the writer did not recover: %d writes", store.writes())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := rec.Record(context.Background(), true, consumedChange("m2")); err != nil {
		t.Fatalf("Record after the store recovered: %v", err)
	}
	for i := 0; i < 3; i++ { // more writes in time: the reused context stays live
		if err := rec.Record(context.Background(), true, consumedChange("m3")); err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.took) != 2 {
		t.Fatalf("%d writes hung and ended, want 2", len(store.took))
	}
	for i, d := range store.took {
		if d < timeout*8/10 || d > 20*timeout {
			t.Errorf("hanging write %d was cancelled after %v, want about %v", i, d, timeout)
		}
		if context.Cause(store.ctxs[i]) == nil {
			t.Errorf("hanging write %d: context not cancelled", i)
		}
	}
	if store.ctxs[0] == store.ctxs[1] {
		t.Error("the write after a timed-out one got the cancelled context again")
	}
	for i, ctx := range store.ctxs[2:] {
		if ctx.Err() != nil {
			t.Errorf("write %d after the timeouts got a context that ended: %v", i+2, ctx.Err())
		}
	}
}

func consumedChange(uuid string) modelevent.Change {
	now := time.Now()
	return modelevent.Change{Event: modelevent.ModelEvent{MessageUUID: uuid, Direction: modelevent.Consumed, Handler: "h", Topic: "t",
		Status: modelevent.StatusSucceeded, Attempts: 1, CreatedAt: now, UpdatedAt: now}}
}
