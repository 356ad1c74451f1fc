package bustest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

// This file holds the helpers of a backend's own tests of a bus (its foreign-producer
// tests, for one): starting a bus, waiting for rows, checking them.

// Start runs b in the background until t's cleanup closes it, and returns once it is
// running. It fails t when Run returns first or b is not running within d.
func Start(t testing.TB, b *bus.Bus, d time.Duration) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case err := <-errc:
		t.Fatalf("bus.Run: %v", err)
	case <-time.After(d):
		t.Fatalf("bus did not start within %v", d)
	}
	t.Cleanup(func() { _ = b.Close() })
}

// Rows returns every row of store that f matches, following the pages' cursors. It
// fails t when a List fails.
func Rows(t testing.TB, store modelevent.Store, f modelevent.Filter) []modelevent.ModelEvent {
	t.Helper()
	var out []modelevent.ModelEvent
	opts := modelevent.ListOptions{Limit: 1000}
	for {
		p, err := store.List(context.Background(), f, opts)
		if err != nil {
			t.Fatalf("store.List: %v", err)
		}
		out = append(out, p.Events...)
		if p.NextCursor == "" {
			return out
		}
		opts.Cursor = p.NextCursor
	}
}

// WaitUntil polls cond every 50ms until it holds, and fails t when d passes first.
func WaitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitRows polls the rows of store that f matches until done holds for them, and
// returns them. It fails t when d passes first.
func WaitRows(t testing.TB, d time.Duration, what string, store modelevent.Store, f modelevent.Filter, done func([]modelevent.ModelEvent) bool) []modelevent.ModelEvent {
	t.Helper()
	var rows []modelevent.ModelEvent
	WaitUntil(t, d, what, func() bool {
		rows = Rows(t, store, f)
		return done(rows)
	})
	return rows
}

// OneRowIn returns a WaitRows condition that holds for exactly one row, in status st.
func OneRowIn(st modelevent.Status) func([]modelevent.ModelEvent) bool {
	return func(rows []modelevent.ModelEvent) bool { return len(rows) == 1 && rows[0].Status == st }
}

// Attempts is the sum of the attempts of rows: of every row, or, when statuses are
// given, of the rows in one of them.
func Attempts(rows []modelevent.ModelEvent, statuses ...modelevent.Status) int {
	n := 0
	for _, r := range rows {
		if len(statuses) == 0 || hasStatus(statuses, r.Status) {
			n += r.Attempts
		}
	}
	return n
}

func hasStatus(statuses []modelevent.Status, st modelevent.Status) bool {
	for _, s := range statuses {
		if s == st {
			return true
		}
	}
	return false
}

// CheckSucceededOnce fails t unless rows are n rows of n different message UUIDs,
// every one succeeded and, when attempts is not nil, with attempts(row) attempts.
func CheckSucceededOnce(t testing.TB, rows []modelevent.ModelEvent, n int, attempts func(modelevent.ModelEvent) int) {
	t.Helper()
	if len(rows) != n {
		t.Fatalf("%d rows, want %d", len(rows), n)
	}
	seen := make(map[string]bool, len(rows))
	for _, r := range rows {
		if seen[r.MessageUUID] {
			t.Fatalf("message %s has two rows", r.MessageUUID)
		}
		seen[r.MessageUUID] = true
		if r.Status != modelevent.StatusSucceeded {
			t.Fatalf("row %s: %s, want succeeded", r.MessageUUID, r.Status)
		}
		if attempts != nil {
			if want := attempts(r); r.Attempts != want {
				t.Fatalf("row %s (metadata %v): %d attempts, want %d", r.MessageUUID, r.Metadata, r.Attempts, want)
			}
		}
	}
}

// Distinct counts the distinct message UUIDs it is given. It is safe for concurrent
// use; the zero value is empty.
type Distinct struct {
	seen sync.Map
	n    atomic.Int64
}

// Add adds uuid and reports whether it is new.
func (d *Distinct) Add(uuid string) bool {
	if _, again := d.seen.LoadOrStore(uuid, true); again {
		return false
	}
	d.n.Add(1)
	return true
}

// Len is how many distinct UUIDs were added.
func (d *Distinct) Len() int { return int(d.n.Load()) }

// LoseFirstAck adds a router middleware to b that fails, once the handler succeeded,
// the first delivery of every message of topic that lose selects, so that the backend
// delivers it again as after a lost ack. Call it before b runs.
func LoseFirstAck(b *bus.Bus, topic string, lose func(*message.Message) bool) {
	var lost sync.Map
	b.Router().AddMiddleware(func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err == nil && message.SubscribeTopicFromCtx(msg.Context()) == topic && lose(msg) {
				if _, again := lost.LoadOrStore(msg.UUID, true); !again {
					return out, errors.New("simulated lost ack")
				}
			}
			return out, err
		}
	})
}
