// Command quickstart is the README's library example as a program: a bus on the
// embedded default (the memory backend and a SQLite file) or on what eventbus.yaml
// says, one typed handler, one published order, and the ModelEvents it left. Its binary
// size is the footprint of a program that uses eventbus as a library (docs/development.md).
//
//	go run ./examples/quickstart [-config eventbus.yaml]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

// Order is the event.
type Order struct {
	ID int `json:"id"`
}

// EventModel names the model of the event.
func (Order) EventModel() string { return "shop.Order" }

func main() {
	config := flag.String("config", "", `config file; "" for the embedded default (memory + SQLite file eventbus.db)`)
	flag.Parse()
	if err := run(context.Background(), *config); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, config string) error {
	cfg, err := bus.LoadConfig(config) // "" for the embedded default; EVENTBUS_* override keys
	if err != nil {
		return err
	}
	b, err := bus.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.Close() // waits for in-flight handlers, flushes every row

	// The consumed row is stored after the handler returns; wait for it before listing.
	stored := make(chan struct{}, 1)
	b.OnChange(func(_ context.Context, c modelevent.Change) {
		if c.Event.Direction == modelevent.Consumed && c.Event.Status == modelevent.StatusSucceeded {
			stored <- struct{}{}
		}
	})
	if err := bus.HandleModel(b, "billing", "orders", func(ctx context.Context, o Order) error {
		fmt.Println("charged order", o.ID) // an error would retry with backoff, then poison
		return nil
	}); err != nil {
		return err
	}
	go b.Run(ctx)
	<-b.Running()

	msg, err := bus.NewChangeMessage(Order{ID: 42}, "42", modelevent.Created) // model "shop.Order" from Order.EventModel()
	if err != nil {
		return err
	}
	if err := b.Publish(ctx, "orders", msg); err != nil {
		return err
	}
	<-stored
	page, err := b.Store().List(ctx, modelevent.Filter{Model: "shop.Order"}, modelevent.ListOptions{Limit: 10})
	if err != nil {
		return err
	}
	for _, e := range page.Events {
		fmt.Printf("%s %-8s %-8s %s\n", e.ID, e.Direction, e.Handler, e.Status)
	}
	return nil
}
