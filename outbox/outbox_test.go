package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
	"github.com/go-eventbus/eventbus/outbox"
)

// order is the business row of the tests and the payload of its events.
type order struct {
	ID  string `json:"id"`
	Seq int    `json:"seq"`
}

func (order) EventModel() string { return "shop.Order" }

const ordersTopic = "shop.orders"

// fixture is a bus (memory backend behind brokerLog, store in the application's
// database), the application's own pool on that database, and its outbox.
type fixture struct {
	bus    *bus.Bus
	broker *brokerLog
	store  *modelevent.SQLStore
	app    *sql.DB
	outbox *bus.Outbox

	mu       sync.Mutex
	consumed map[string]int // message UUID → deliveries to the handler
}

func newFixture(t *testing.T, db database, cfg bus.OutboxConfig) *fixture {
	t.Helper()
	ctx := context.Background()
	dsn := db.dsn(t)
	f := &fixture{broker: newBrokerLog(), consumed: map[string]int{}}
	var err error
	f.bus, err = bus.New(ctx, bus.Config{
		Broker:  f.broker,
		Store:   bus.StoreConfig{Driver: db.dialect, DSN: dsn},
		Process: bus.ProcessConfig{Disabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.bus.Close() })
	f.store = f.bus.Store().(*modelevent.SQLStore)
	// The application has a pool of its own on the same database.
	app, err := modelevent.Open(ctx, db.dialect, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Close() })
	f.app = app.DB()
	if _, err := f.app.ExecContext(ctx, `CREATE TABLE orders (id VARCHAR(64) NOT NULL PRIMARY KEY, seq INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := f.app.ExecContext(ctx, rebind(db.dialect, `INSERT INTO orders (id, seq) VALUES (?, 0)`), fmt.Sprintf("order-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.bus.Handle("audit", ordersTopic, func(ctx context.Context, msg *message.Message) error {
		f.mu.Lock()
		f.consumed[msg.UUID]++
		f.mu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = f.bus.Run(ctx) }()
	<-f.bus.Running()
	f.outbox, err = bus.NewOutbox(f.bus, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.outbox.Close() })
	if err := f.outbox.InitializeSchema(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

// saveOrder bumps the order's sequence number and publishes the change in one
// transaction, committed or rolled back; it returns the message UUID and the sequence.
func (f *fixture) saveOrder(ctx context.Context, id string, commit bool) (string, int, error) {
	tx, err := f.app.BeginTx(ctx, nil)
	if err != nil {
		return "", 0, err
	}
	defer func() { _ = tx.Rollback() }()
	// The row lock taken here orders the transactions of one order.
	if _, err := tx.ExecContext(ctx, rebind(f.store.Dialect(), `UPDATE orders SET seq = seq + 1 WHERE id = ?`), id); err != nil {
		return "", 0, err
	}
	var seq int
	if err := tx.QueryRowContext(ctx, rebind(f.store.Dialect(), `SELECT seq FROM orders WHERE id = ?`), id).Scan(&seq); err != nil {
		return "", 0, err
	}
	change := modelevent.Updated
	if seq == 1 {
		change = modelevent.Created
	}
	msg, err := bus.NewChangeMessage(order{ID: id, Seq: seq}, id, change)
	if err == nil {
		err = f.outbox.PublishTx(ctx, tx, ordersTopic, msg)
	}
	uuid := msg.UUID
	if err != nil {
		return "", 0, err
	}
	if !commit {
		return uuid, seq, tx.Rollback()
	}
	return uuid, seq, tx.Commit()
}

func rebind(dialect, q string) string {
	if dialect != modelevent.DialectPostgres {
		return q
	}
	out, n := []byte{}, 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			out = append(out, fmt.Sprintf("$%d", n)...)
			continue
		}
		out = append(out, q[i])
	}
	return string(out)
}

func (f *fixture) relay(t *testing.T) *outbox.Relay {
	t.Helper()
	r, err := f.outbox.NewRelay(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func (f *fixture) outboxRows(t *testing.T) int {
	t.Helper()
	var n int
	table := "eventbus_outbox"
	if f.store.Dialect() == modelevent.DialectMySQL {
		table = "`" + table + "`"
	}
	if err := f.app.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// saveConcurrently runs n saves (of objects round-robin, rolling back those for which
// rollback says so) on 4 goroutines and returns the UUIDs committed and rolled back.
func (f *fixture) saveConcurrently(t *testing.T, from, n int, rollback func(i int) bool) (committed, rolledBack []string) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				commit := !rollback(i)
				uuid, _, err := f.saveOrder(context.Background(), fmt.Sprintf("order-%d", i%5), commit)
				if err != nil {
					errs <- fmt.Errorf("save %d: %w", i, err)
					continue
				}
				mu.Lock()
				if commit {
					committed = append(committed, uuid)
				} else {
					rolledBack = append(rolledBack, uuid)
				}
				mu.Unlock()
			}
		}()
	}
	for i := from; i < from+n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return committed, rolledBack
}

// TestOutboxDeliversCommittedOnly is the outbox's proof, on SQLite, PostgreSQL and
// MariaDB: business rows and their events commit or roll back together; the relay is
// killed after publishing and before deleting, and committed messages wait while it is
// down; once it runs again every committed event is delivered (at least once) and
// recorded published and consumed, no rolled-back one exists anywhere, and the
// changes of each order reach the broker in commit order.
func TestOutboxDeliversCommittedOnly(t *testing.T) {
	for _, db := range databases {
		t.Run(db.dialect, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, db, bus.OutboxConfig{Config: outbox.Config{BatchSize: 5, PollInterval: 10 * time.Millisecond, RetryInterval: 10 * time.Millisecond}})
			every4th := func(i int) bool { return i%4 == 3 }

			// Phase 1: commit and roll back with no relay running.
			committed, rolledBack := f.saveConcurrently(t, 0, 24, every4th)
			for _, uuid := range committed {
				rows, err := f.store.List(ctx, modelevent.Filter{MessageUUID: uuid}, modelevent.ListOptions{})
				if err != nil || len(rows.Events) != 1 || rows.Events[0].Status != modelevent.StatusPending ||
					rows.Events[0].Model != "shop.Order" || rows.Events[0].ObjectID == "" {
					t.Fatalf("committed %s before the relay: rows %+v, %v; want one pending produced row", uuid, rows.Events, err)
				}
			}
			if n := f.outboxRows(t); n != len(committed) {
				t.Fatalf("outbox holds %d rows, want %d committed", n, len(committed))
			}

			// The relay is killed right after its 7th publish, before it deletes that batch.
			ctx1, kill := context.WithCancel(ctx)
			f.broker.setHook(func(n int) error {
				if n == 7 {
					kill()
				}
				return nil
			})
			r1 := f.relay(t)
			done := make(chan error, 1)
			go func() { done <- r1.Run(ctx1) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("relay 1: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("relay 1 did not stop")
			}
			f.broker.setHook(nil)
			if got := len(f.broker.messages()); got < 7 || got >= len(committed) {
				t.Fatalf("relay 1 published %d messages before it was killed, want 7 to %d", got, len(committed)-1)
			}

			// Phase 2: more transactions while the relay is down, then a new relay.
			c2, rb2 := f.saveConcurrently(t, 24, 16, every4th)
			committed, rolledBack = append(committed, c2...), append(rolledBack, rb2...)
			r2 := f.relay(t)
			go func() { _ = r2.Run(ctx) }()

			waitFor(t, "every committed event consumed and published", func() bool {
				f.mu.Lock()
				defer f.mu.Unlock()
				for _, uuid := range committed {
					if f.consumed[uuid] == 0 {
						return false
					}
				}
				st, err := f.store.Stats(ctx, modelevent.Filter{Direction: modelevent.Produced, Statuses: []modelevent.Status{modelevent.StatusPublished}})
				return err == nil && st.Total == int64(len(committed))
			})
			waitFor(t, "the outbox to empty", func() bool { return f.outboxRows(t) == 0 })
			if err := r2.Close(); err != nil {
				t.Fatalf("close relay 2: %v", err)
			}

			// Every committed event: published, consumed, recorded both ways.
			sent := map[string]int{}
			for _, p := range f.broker.messages() {
				sent[p.uuid]++
			}
			dups := 0
			for _, uuid := range committed {
				if sent[uuid] == 0 {
					t.Errorf("committed %s never reached the broker", uuid)
				}
				dups += sent[uuid] - 1
				rows, err := f.store.List(ctx, modelevent.Filter{MessageUUID: uuid}, modelevent.ListOptions{})
				if err != nil {
					t.Fatal(err)
				}
				var produced, consumed int
				for _, e := range rows.Events {
					switch {
					case e.Direction == modelevent.Produced && e.Status == modelevent.StatusPublished && e.Attempts >= 1:
						produced++
					case e.Direction == modelevent.Consumed && e.Handler == "audit" && e.Status == modelevent.StatusSucceeded:
						consumed++
					}
				}
				if produced != 1 || consumed != 1 {
					t.Errorf("committed %s: %d published rows, %d consumed rows, want 1 and 1: %+v", uuid, produced, consumed, rows.Events)
				}
			}
			// No trace of a rolled-back one.
			for _, uuid := range rolledBack {
				if sent[uuid] != 0 {
					t.Errorf("rolled-back %s reached the broker", uuid)
				}
				if rows, err := f.store.List(ctx, modelevent.Filter{MessageUUID: uuid}, modelevent.ListOptions{}); err != nil || len(rows.Events) != 0 {
					t.Errorf("rolled-back %s has rows %+v (%v)", uuid, rows.Events, err)
				}
			}
			// Per order, a sequence number is first published only after all lower ones.
			seen := map[string]int{}
			for _, p := range f.broker.messages() {
				var o order
				if err := json.Unmarshal(p.payload, &o); err != nil {
					t.Fatal(err)
				}
				if o.Seq > seen[o.ID]+1 {
					t.Errorf("order %s: seq %d published before seq %d", o.ID, o.Seq, seen[o.ID]+1)
				}
				seen[o.ID] = max(seen[o.ID], o.Seq)
			}
			// "Every event about order-1": its produced and consumed rows.
			about, err := f.store.List(ctx, modelevent.Filter{Model: "shop.Order", ObjectID: "order-1"}, modelevent.ListOptions{Limit: 1000})
			if err != nil || len(about.Events) != 2*seen["order-1"] {
				t.Errorf("events about order-1: %d (%v), want %d", len(about.Events), err, 2*seen["order-1"])
			}
			t.Logf("%d committed, %d rolled back, %d published again after the kill", len(committed), len(rolledBack), dups)
		})
	}
}
