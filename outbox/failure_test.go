package outbox_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/modelevent"
	"github.com/go-eventbus/eventbus/outbox"
)

// TestOutboxBrokerDown: while the broker refuses messages the relay keeps them, records
// each failed attempt on the pending row, and retries; nothing overtakes the first
// message, and once the broker is back every message goes out in order.
func TestOutboxBrokerDown(t *testing.T) {
	for _, db := range databases {
		t.Run(db.dialect, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, db, bus.OutboxConfig{Config: outbox.Config{PollInterval: 10 * time.Millisecond, RetryInterval: 5 * time.Millisecond, MaxRetryInterval: 20 * time.Millisecond}})
			f.broker.mu.Lock()
			f.broker.fail = 3
			f.broker.mu.Unlock()
			var uuids []string
			for range 3 {
				uuid, _, err := f.saveOrder(ctx, "order-0", true)
				if err != nil {
					t.Fatal(err)
				}
				uuids = append(uuids, uuid)
			}
			r := f.relay(t)
			go func() { _ = r.Run(ctx) }()
			waitFor(t, "the outbox to empty", func() bool { return f.outboxRows(t) == 0 })
			sent := f.broker.messages()
			if len(sent) != 3 || sent[0].uuid != uuids[0] || sent[1].uuid != uuids[1] || sent[2].uuid != uuids[2] {
				t.Fatalf("published %+v, want %v in order", sent, uuids)
			}
			rows, err := f.store.List(ctx, modelevent.Filter{MessageUUID: uuids[0]}, modelevent.ListOptions{})
			if err != nil || len(rows.Events) == 0 {
				t.Fatal(rows, err)
			}
			first, err := f.store.Get(ctx, rows.Events[len(rows.Events)-1].ID)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the first row published", func() bool {
				first, err = f.store.Get(ctx, first.ID)
				return err == nil && first.Status == modelevent.StatusPublished
			})
			if first.Direction != modelevent.Produced || first.Attempts != 4 || len(first.History) != 4 ||
				!strings.Contains(first.LastError, "broker down") || first.History[3].Error != "" {
				t.Fatalf("first message's row: status %s attempts %d last error %q history %+v; want published after 3 failed attempts",
					first.Status, first.Attempts, first.LastError, first.History)
			}
		})
	}
}

// TestOutboxStoreElsewhere: with the store in another database than the application's
// (SQLite store, PostgreSQL application), PublishTx writes only the outbox row and the
// relay creates the produced row when it forwards.
func TestOutboxStoreElsewhere(t *testing.T) {
	ctx := context.Background()
	appDSN := testenv.FreshPostgres(t)
	b, err := bus.New(ctx, bus.Config{
		Broker:  newBrokerLog(),
		Store:   bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "events.db")},
		Process: bus.ProcessConfig{Disabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	o, err := bus.NewOutbox(b, bus.OutboxConfig{DSN: appDSN, Config: outbox.Config{Dialect: "postgres", PollInterval: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Config().Record != bus.OutboxRecordRelay {
		t.Fatalf("record = %q, want relay for a store in another database", o.Config().Record)
	}
	if _, err := bus.NewOutbox(b, bus.OutboxConfig{DSN: appDSN, Record: bus.OutboxRecordTx, Config: outbox.Config{Dialect: "postgres"}}); err == nil {
		t.Fatal("record tx with a SQLite store and a PostgreSQL outbox: no error")
	}
	app, err := o.DB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.InitializeSchema(ctx); err != nil {
		t.Fatal(err)
	}
	var uuids [2]string
	for i, commit := range []bool{true, false} {
		tx, err := app.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := bus.NewChangeMessage(order{ID: "9", Seq: i + 1}, "9", modelevent.Created)
		if err == nil {
			err = o.PublishTx(ctx, tx, ordersTopic, msg)
		}
		uuids[i] = msg.UUID
		if err != nil {
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
	if st, _ := b.Store().Stats(ctx, modelevent.Filter{}); st.Total != 0 {
		t.Fatalf("rows before the relay: %+v, want none", st)
	}
	r, err := o.NewRelay(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() { _ = r.Run(ctx) }()
	var rows modelevent.Page
	waitFor(t, "the produced row", func() bool {
		rows, err = b.Store().List(ctx, modelevent.Filter{Model: "shop.Order", ObjectID: "9"}, modelevent.ListOptions{})
		return err == nil && len(rows.Events) > 0
	})
	if e := rows.Events[0]; len(rows.Events) != 1 || e.MessageUUID != uuids[0] || e.Status != modelevent.StatusPublished ||
		e.Change != modelevent.Created || e.Topic != ordersTopic {
		t.Fatalf("rows = %+v, want the committed message published", rows.Events)
	}
	time.Sleep(50 * time.Millisecond)
	if rows, _ := b.Store().List(ctx, modelevent.Filter{MessageUUID: uuids[1]}, modelevent.ListOptions{}); len(rows.Events) != 0 {
		t.Fatalf("rolled-back message recorded: %+v", rows.Events)
	}
}
