package bus_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

type Order struct {
	ID    int     `json:"id"`
	Total float64 `json:"total"`
}

func (Order) EventModel() string { return "shop.Order" }

// The whole life of an event: configure, handle, publish, run, and read the ModelEvents.
func Example() {
	dir, _ := os.MkdirTemp("", "eventbus-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	cfg, _ := bus.LoadConfig("") // no file: the embedded default, EVENTBUS_* apply
	cfg.Store.DSN = "file:" + filepath.Join(dir, "events.db")
	b, err := bus.New(ctx, cfg)
	if err != nil {
		panic(err)
	}
	defer b.Close()

	handled := make(chan struct{})
	bus.HandleModel(b, "billing", "orders", func(ctx context.Context, o Order) error {
		fmt.Printf("billing order %d for %.2f\n", o.ID, o.Total)
		close(handled)
		return nil
	})
	go b.Run(ctx)
	<-b.Running()

	msg, _ := bus.NewModelMessage(Order{ID: 42, Total: 9.99})
	b.Publish(ctx, "orders", msg)
	<-handled
	b.Close() // flushes every row

	store, _ := modelevent.Open(ctx, "sqlite", cfg.Store.DSN)
	defer store.Close()
	for _, d := range []modelevent.Direction{modelevent.Produced, modelevent.Consumed} {
		page, _ := store.List(ctx, modelevent.Filter{Model: "shop.Order", Direction: d}, modelevent.ListOptions{})
		for _, e := range page.Events {
			fmt.Println(e.Direction, e.Topic, e.Handler, e.Status, e.Attempts)
		}
	}
	// Output:
	// billing order 42 for 9.99
	// produced orders  published 1
	// consumed orders billing succeeded 1
}
