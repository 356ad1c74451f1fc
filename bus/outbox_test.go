package bus_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
	"github.com/go-eventbus/eventbus/outbox"
)

// TestOutboxEnabledRunsTheRelay: with outbox.enabled the bus runs the relay; an event
// published in a committed transaction is delivered, one in a rolled-back one is not.
func TestOutboxEnabledRunsTheRelay(t *testing.T) {
	b := newTestBus(t, bus.Config{
		Store:  bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "app.db")},
		Outbox: bus.OutboxConfig{Enabled: true, Config: outbox.Config{PollInterval: 10 * time.Millisecond}},
	})
	got := make(chan string, 4)
	if err := b.Handle("mailer", "signups", func(ctx context.Context, msg *message.Message) error {
		got <- string(msg.Payload)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	db := b.Store().(*modelevent.SQLStore).DB()
	ctx := context.Background()
	for _, commit := range []bool{false, true} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		payload := "rolled back"
		if commit {
			payload = "committed"
		}
		if err := b.PublishTx(ctx, tx, "signups", message.NewMessage("", []byte(payload))); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	rows := waitRows(t, b, modelevent.Filter{Direction: modelevent.Consumed, Statuses: []modelevent.Status{modelevent.StatusSucceeded}}, 1)
	if string(rows[0].Payload) != "committed" || <-got != "committed" {
		t.Fatalf("delivered %q", rows[0].Payload)
	}
	produced := waitRows(t, b, modelevent.Filter{Direction: modelevent.Produced, Statuses: []modelevent.Status{modelevent.StatusPublished}}, 1)
	if len(produced) != 1 {
		t.Fatalf("produced rows: %+v", produced)
	}
	select {
	case p := <-got:
		t.Fatalf("a second message arrived: %q", p)
	default:
	}
}
