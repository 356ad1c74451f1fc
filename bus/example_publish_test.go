package bus_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

// exampleBus returns a running bus on the memory backend with a SQLite store in a
// temporary directory, and its cleanup.
func exampleBus(cfg bus.Config, register func(b *bus.Bus)) (*bus.Bus, func()) {
	dir, _ := os.MkdirTemp("", "eventbus-example")
	cfg.Store = bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(dir, "events.db")}
	b, err := bus.New(context.Background(), cfg)
	if err != nil {
		panic(err)
	}
	register(b)
	go b.Run(context.Background())
	<-b.Running()
	return b, func() { b.Close(); os.RemoveAll(dir) }
}

// Publish any payload: NewMessage gives it a UUID; Handle sees the raw Watermill
// message.
func ExampleBus_Publish() {
	got := make(chan string)
	b, done := exampleBus(bus.Config{}, func(b *bus.Bus) {
		b.Handle("mailer", "signups", func(ctx context.Context, msg *message.Message) error {
			got <- string(msg.Payload)
			return nil
		})
	})
	defer done()

	if err := b.Publish(context.Background(), "signups", bus.NewMessage([]byte("ada@example.com"))); err != nil {
		panic(err)
	}
	fmt.Println("mailer got", <-got)
	// Output: mailer got ada@example.com
}

// A model change: the object id and the change become columns of the rows, and every
// handler reads them with DeliveryFromContext.
func ExampleNewChangeMessage() {
	got := make(chan bus.Delivery)
	b, done := exampleBus(bus.Config{}, func(b *bus.Bus) {
		bus.HandleModel(b, "shipping", "orders", func(ctx context.Context, o Order) error {
			d, _ := bus.DeliveryFromContext(ctx)
			got <- d
			return nil
		})
	})
	defer done()

	msg, err := bus.NewChangeMessage(Order{ID: 42, Total: 9.99}, "42", modelevent.Created)
	if err != nil {
		panic(err)
	}
	if err := b.Publish(context.Background(), "orders", msg); err != nil {
		panic(err)
	}
	d := <-got
	fmt.Println(d.Model, d.ObjectID, d.Change, "attempt", d.Attempt)
	// Output: shop.Order 42 created attempt 1
}

// PublishTx writes the event in the caller's transaction (the outbox): it is
// published after the commit, and never if the transaction rolls back. With the outbox
// enabled, New builds the relay and Run runs it.
func ExampleBus_PublishTx() {
	got := make(chan string, 2)
	b, done := exampleBus(bus.Config{Outbox: bus.OutboxConfig{Enabled: true}}, func(b *bus.Bus) {
		bus.HandleModel(b, "shipping", "orders", func(ctx context.Context, o Order) error {
			got <- fmt.Sprintf("shipping order %d", o.ID)
			return nil
		})
	})
	defer done()
	ctx := context.Background()
	db := b.Store().(modelevent.SQLDatabase).DB() // here the application's database is the store's

	for _, commit := range []bool{false, true} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			panic(err)
		}
		msg, _ := bus.NewChangeMessage(Order{ID: 7}, "7", modelevent.Updated)
		if err := b.PublishTx(ctx, tx, "orders", msg); err != nil {
			panic(err)
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			panic(err)
		}
	}
	fmt.Println(<-got)
	// Output: shipping order 7
}

// HandleModel receives only its model: a Customer on the same topic is acked without
// reaching the Order handler. A failed attempt is retried; the handler knows which
// attempt it runs.
func ExampleHandleModel() {
	type Customer struct{ Name string }
	got := make(chan string, 4)
	b, done := exampleBus(bus.Config{}, func(b *bus.Bus) {
		bus.HandleModel(b, "billing", "shop", func(ctx context.Context, o Order) error {
			d, _ := bus.DeliveryFromContext(ctx)
			if d.Attempt == 1 {
				got <- "attempt 1 fails"
				return errors.New("card service timeout")
			}
			got <- fmt.Sprintf("attempt %d bills order %d", d.Attempt, o.ID)
			return nil
		})
	})
	defer done()

	customer, _ := bus.NewModelMessage(Customer{Name: "ada"})
	order, _ := bus.NewModelMessage(Order{ID: 42, Total: 9.99})
	if err := b.Publish(context.Background(), "shop", customer, order); err != nil {
		panic(err)
	}
	fmt.Println(<-got)
	fmt.Println(<-got)
	// Output:
	// attempt 1 fails
	// attempt 2 bills order 42
}

// Shutdown waits for the handlers in flight until its context ends, then cancels
// their contexts; a handler that returns on ctx.Done lets Shutdown record its row and
// return.
func ExampleBus_Shutdown() {
	started := make(chan struct{})
	b, done := exampleBus(bus.Config{}, func(b *bus.Bus) {
		b.Handle("report", "nightly", func(ctx context.Context, msg *message.Message) error {
			close(started)
			<-ctx.Done() // a long job that stops when asked
			fmt.Println("report handler:", ctx.Err())
			return ctx.Err()
		})
	})
	defer done()
	b.Publish(context.Background(), "nightly", bus.NewMessage([]byte("run")))
	<-started

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := b.Shutdown(ctx)
	fmt.Println("shutdown:", err)
	// Output:
	// report handler: context canceled
	// shutdown: <nil>
}
