package bus_test

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/oklog/ulid/v2"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/modelevent"
	"github.com/go-eventbus/eventbus/outbox"
)

// countingStore wraps the SQL store, as a user's store adding metrics or tracing does:
// it counts writes and forwards everything else by embedding.
type countingStore struct {
	*modelevent.SQLStore
	writes atomic.Int64
}

func (s *countingStore) Write(ctx context.Context, changes []modelevent.Change) error {
	s.writes.Add(1)
	return s.SQLStore.Write(ctx, changes)
}

// TestWrappedStoreKeepsControlOutboxAndRetention: a store wrapping the SQL store keeps
// the control plane, the outbox (record tx) and retention working; they depend on the
// store's capabilities, not on its type.
func TestWrappedStoreKeepsControlOutboxAndRetention(t *testing.T) {
	defer bus.SetRetentionLease(500*time.Millisecond, 100*time.Millisecond)()
	ctx := context.Background()
	sql, err := modelevent.Open(ctx, "sqlite", "file:"+filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sql.Close() })
	if err := sql.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := sql.Write(ctx, []modelevent.Change{{Event: modelevent.ModelEvent{
		ID: ulid.MustNew(ulid.Timestamp(old), rand.Reader).String(), MessageUUID: "old", Direction: modelevent.Produced,
		Topic: "signups", Status: modelevent.StatusPublished, Attempts: 1, CreatedAt: old,
	}}}); err != nil {
		t.Fatal(err)
	}
	store := &countingStore{SQLStore: sql}
	b := newTestBus(t, bus.Config{
		EventStore: store,
		Outbox:     bus.OutboxConfig{Enabled: true, Config: outbox.Config{PollInterval: 10 * time.Millisecond}},
		Retention:  bus.RetentionConfig{Published: 24 * time.Hour, Interval: time.Second},
	})
	if b.Control() == nil {
		t.Fatal("no control plane with a wrapped SQL store")
	}
	if err := b.Handle("mailer", "signups", func(ctx context.Context, msg *message.Message) error { return nil }); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)

	tx, err := sql.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.PublishTx(ctx, tx, "signups", bus.NewMessage([]byte("hello"))); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	bustest.WaitRows(t, 10*time.Second, "the outbox's message consumed", store,
		modelevent.Filter{Direction: modelevent.Consumed, Statuses: []modelevent.Status{modelevent.StatusSucceeded}}, bustest.OneRowIn(modelevent.StatusSucceeded))
	bustest.WaitUntil(t, 10*time.Second, "the process registered", func() bool {
		ps, err := b.Control().Processes(ctx)
		return err == nil && len(ps) == 1 && ps[0].ID == b.ProcessID()
	})
	bustest.WaitUntil(t, 10*time.Second, "retention pruned the old row", func() bool {
		p, _ := store.List(ctx, modelevent.Filter{Topic: "signups", Direction: modelevent.Produced}, modelevent.ListOptions{Limit: 10})
		for _, ev := range p.Events {
			if ev.MessageUUID == "old" {
				return false
			}
		}
		return true
	})
	if store.writes.Load() == 0 {
		t.Fatal("the bus did not record through the wrapping store")
	}
}

// TestIDKindsAreNamed: an event call given a message UUID says which kind of id it
// wanted and which it got.
func TestIDKindsAreNamed(t *testing.T) {
	b := newTestBus(t, bus.Config{})
	uuid := bus.NewUUID()
	for name, call := range map[string]func() error{
		"Replay":  func() error { _, err := b.Replay(context.Background(), uuid); return err },
		"Redrive": func() error { _, err := b.Redrive(context.Background(), uuid); return err },
		"Retry":   func() error { return b.Retry(context.Background(), uuid) },
	} {
		err := call()
		if !errors.Is(err, modelevent.ErrMalformedID) || !errors.Is(err, modelevent.ErrNotFound) ||
			!strings.Contains(err.Error(), "want an event id (a 26-character ULID), got a message UUID") {
			t.Errorf("%s(message UUID): %v", name, err)
		}
	}
	if err := b.Retry(context.Background(), "nope"); !strings.Contains(err.Error(), "got neither an event id nor a message UUID") {
		t.Errorf("Retry(nope): %v", err)
	}
}
