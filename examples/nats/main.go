// Command nats publishes and consumes a few events through eventbus on NATS JetStream
// and prints the ModelEvents it recorded.
//
//	go run ./examples/nats                          # NATS at nats://127.0.0.1:4222
//	go run ./examples/nats -url nats://host:4222
//	go run ./examples/nats -embedded                # a NATS server inside the process
//
// The address also comes from NATS_URL. Events are recorded in a SQLite file in a
// temporary directory.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "github.com/go-eventbus/eventbus/backends/nats"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

// Order is the event payload.
type Order struct {
	ID    int    `json:"id"`
	Total string `json:"total"`
}

// EventModel names the model of an Order event.
func (Order) EventModel() string { return "shop.Order" }

func main() {
	def := os.Getenv("NATS_URL")
	if def == "" {
		def = "nats://127.0.0.1:4222"
	}
	url := flag.String("url", def, "NATS server URL(s), comma-separated")
	embedded := flag.Bool("embedded", false, "run a NATS server with JetStream inside this process")
	flag.Parse()
	if err := run(*url, *embedded); err != nil {
		log.Fatal(err)
	}
}

func run(url string, embedded bool) error {
	dir, err := os.MkdirTemp("", "eventbus-nats-example")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// One stream for every run (its messages expire after an hour); the durable
	// consumers billing and shipping continue where the previous run stopped.
	settings := map[string]any{"url": url, "max_age": "1h"}
	if embedded {
		settings = map[string]any{"embedded": true, "store_dir": filepath.Join(dir, "nats")}
	}
	ctx := context.Background()
	b, err := bus.New(ctx, bus.Config{
		Backend:         "nats",
		BackendSettings: settings,
		Store:           bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(dir, "events.db")},
	})
	if err != nil {
		return err
	}
	defer b.Close()

	topic := "example.shop.orders"
	const n = 3
	var wg sync.WaitGroup
	wg.Add(2 * n)
	for _, name := range []string{"billing", "shipping"} {
		name := name
		if err := bus.HandleModel(b, name, topic, func(ctx context.Context, o Order) error {
			fmt.Printf("%-8s handled order %d (%s)\n", name, o.ID, o.Total)
			wg.Done()
			return nil
		}); err != nil {
			return err
		}
	}
	go func() { _ = b.Run(ctx) }()
	select {
	case <-b.Running():
	case <-time.After(10 * time.Second):
		return fmt.Errorf("bus did not start")
	}
	for i := 1; i <= n; i++ {
		msg, err := bus.NewModelMessage(Order{ID: i, Total: fmt.Sprintf("%d.99", i*10)})
		if err == nil {
			err = b.Publish(ctx, topic, msg)
		}
		if err != nil {
			return err
		}
	}
	wg.Wait()
	if err := b.Close(); err != nil { // flushes every row
		return err
	}

	store, err := modelevent.Open(ctx, "sqlite", "file:"+filepath.Join(dir, "events.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	page, err := store.List(ctx, modelevent.Filter{Topic: topic}, modelevent.ListOptions{Limit: 100})
	if err != nil {
		return err
	}
	fmt.Printf("\n%d ModelEvents on %s:\n", len(page.Events), topic)
	for i := len(page.Events) - 1; i >= 0; i-- {
		e := page.Events[i]
		fmt.Printf("  %-8s %-9s %-10s attempts=%d model=%s payload=%s\n", e.Direction, e.Status, e.Handler, e.Attempts, e.Model, e.Payload)
	}
	return nil
}
