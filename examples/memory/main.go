// Command memory runs a bus on the embedded default — the memory backend and a SQLite
// file — publishes a few orders, and prints the ModelEvents they left.
//
//	go run ./examples/memory [-db events.db]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

// Order is the event.
type Order struct {
	ID    int     `json:"id"`
	Total float64 `json:"total"`
}

// EventModel names the model of the event.
func (Order) EventModel() string { return "shop.Order" }

func main() {
	db := flag.String("db", filepath.Join(os.TempDir(), "eventbus-example-memory.db"), "SQLite file for the ModelEvents")
	flag.Parse()
	ctx := context.Background()

	cfg, err := bus.LoadConfig("") // the embedded default; EVENTBUS_* variables apply
	if err != nil {
		log.Fatal(err)
	}
	cfg.Store.DSN = "file:" + *db
	cfg.Retry.MaxRetries, cfg.Retry.InitialInterval = 2, 10*time.Millisecond
	b, err := bus.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	done := make(chan struct{}, 3)
	if err := bus.HandleModel(b, "billing", "orders", func(ctx context.Context, o Order) error {
		defer func() { done <- struct{}{} }()
		if o.Total > 100 {
			return errors.New("over the card limit") // retried, then poisoned
		}
		fmt.Printf("billed order %d: %.2f\n", o.ID, o.Total)
		return nil
	}); err != nil {
		log.Fatal(err)
	}
	go b.Run(ctx)
	<-b.Running()

	for i, total := range []float64{9.99, 250, 42} {
		msg, err := bus.NewModelMessage(Order{ID: i + 1, Total: total})
		if err == nil {
			err = b.Publish(ctx, "orders", msg)
		}
		if err != nil {
			log.Fatal(err)
		}
	}
	for i := 0; i < 3+2*1; i++ { // three orders, two retries of the one over the limit
		<-done
	}
	time.Sleep(100 * time.Millisecond)
	if err := b.Close(); err != nil {
		log.Fatal(err)
	}

	store, err := modelevent.Open(ctx, "sqlite", cfg.Store.DSN)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	page, err := store.List(ctx, modelevent.Filter{Model: "shop.Order"}, modelevent.ListOptions{Limit: 10})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range page.Events {
		fmt.Printf("%s  %-8s %-7s %-10s attempts=%d %s\n", e.ID, e.Direction, e.Handler, e.Status, e.Attempts, e.LastError)
	}
}
