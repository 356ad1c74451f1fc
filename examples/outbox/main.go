// Command outbox saves orders in PostgreSQL and publishes their events through the
// transactional outbox: the order row and its event commit or roll back together, and a
// relay delivers committed events to the bus's backend (memory here; any backend works
// the same). It prints the ModelEvents of one order.
//
//	go run ./examples/outbox                    # PostgreSQL on 127.0.0.1:5432, db test
//	go run ./examples/outbox -dsn postgres://app@db:5432/app?sslmode=disable
//
// It creates the tables examples_orders, eventbus_outbox and the eventbus_* store tables
// in the database.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

// Order is the business row and the payload of its events.
type Order struct {
	ID     string `json:"id"`
	Total  string `json:"total"`
	Status string `json:"status"`
}

// EventModel names the model of the ModelEvents.
func (Order) EventModel() string { return "shop.Order" }

const topic = "shop.orders"

// errOutOfStock makes SaveOrder roll back: neither the row nor its event is kept.
var errOutOfStock = errors.New("out of stock")

// SaveOrder inserts or updates the order and publishes its change in the same
// transaction. The row is written first: its lock orders the events of one order.
func SaveOrder(ctx context.Context, b *bus.Bus, db *sql.DB, o Order, inStock bool) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var inserted bool
	err = tx.QueryRowContext(ctx, `INSERT INTO examples_orders (id, total, status) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET total = excluded.total, status = excluded.status
		RETURNING (xmax = 0)`, o.ID, o.Total, o.Status).Scan(&inserted)
	if err != nil {
		return fmt.Errorf("save order %s: %w", o.ID, err)
	}
	change := modelevent.Updated
	if inserted {
		change = modelevent.Created
	}
	msg, err := bus.NewChangeMessage(o, o.ID, change)
	if err == nil {
		err = b.PublishTx(ctx, tx, topic, msg)
	}
	if err != nil {
		return fmt.Errorf("save order %s: %w", o.ID, err)
	}
	if !inStock {
		return fmt.Errorf("save order %s: %w", o.ID, errOutOfStock)
	}
	return tx.Commit()
}

func main() {
	dsn := flag.String("dsn", envOr("POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL DSN")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The store is in the application's database: PublishTx writes the produced
	// ModelEvents in the same transaction (record: tx). With the outbox enabled, New
	// builds the relay; Run runs it and Close stops it.
	b, err := bus.New(ctx, bus.Config{
		Store:   bus.StoreConfig{Driver: "postgres", DSN: *dsn},
		Process: bus.ProcessConfig{Disabled: true},
		Outbox:  bus.OutboxConfig{Enabled: true},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	db := b.Store().(modelevent.SQLDatabase).DB()
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS examples_orders (
		id TEXT PRIMARY KEY, total TEXT NOT NULL, status TEXT NOT NULL)`); err != nil {
		log.Fatal(err)
	}

	got := make(chan string, 8)
	if err := b.Handle("shipping", topic, func(ctx context.Context, msg *message.Message) error {
		c, _ := bus.DeliveryFromContext(ctx)
		got <- fmt.Sprintf("shipping saw %s %s %s: %s", c.Model, c.ObjectID, c.Change, msg.Payload)
		return nil
	}); err != nil {
		log.Fatal(err)
	}
	go func() { _ = b.Run(ctx) }()
	<-b.Running()

	id := fmt.Sprintf("order-%d", time.Now().UnixNano())
	steps := []struct {
		o       Order
		inStock bool
	}{
		{Order{ID: id, Total: "42.00", Status: "new"}, true},
		{Order{ID: id, Total: "42.00", Status: "paid"}, true},
		{Order{ID: id, Total: "99.00", Status: "paid"}, false}, // rolled back: no event
		{Order{ID: id, Total: "42.00", Status: "shipped"}, true},
	}
	for _, s := range steps {
		if err := SaveOrder(ctx, b, db, s.o, s.inStock); err != nil {
			fmt.Println("not saved:", err)
		}
	}
	for range 3 {
		fmt.Println(<-got)
	}
	time.Sleep(100 * time.Millisecond) // let the last rows be recorded

	p, err := b.Store().List(ctx, modelevent.Filter{Model: "shop.Order", ObjectID: id}, modelevent.ListOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("every event about %s:\n", id)
	for _, e := range p.Events {
		fmt.Printf("  %s %-8s %-8s %-9s %s\n", e.ID, e.Direction, e.Change, e.Status, e.Handler)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
