// Command amqp publishes and consumes a few events through an eventbus Bus on RabbitMQ
// and prints the ModelEvents recorded for them.
//
//	go run ./examples/amqp                      # RabbitMQ on 127.0.0.1:5672, guest/guest
//	go run ./examples/amqp -url amqp://user:pass@rabbit:5672/vhost
//	AMQP_URL=amqps://… go run ./examples/amqp
//
// It declares a fanout exchange "examples.orders" and the durable queue
// "examples.orders_billing" (and "…_shipping"); delete them with -cleanup.
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

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/go-eventbus/eventbus/backends/amqp"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

// Order is the example's event.
type Order struct {
	ID    int    `json:"id"`
	Total string `json:"total"`
}

// EventModel names the model of the ModelEvents.
func (Order) EventModel() string { return "shop.Order" }

const topic = "examples.orders"

func main() {
	def := os.Getenv("AMQP_URL")
	if def == "" {
		def = amqp.DefaultURL
	}
	url := flag.String("url", def, "RabbitMQ URL (env AMQP_URL)")
	cleanup := flag.Bool("cleanup", true, "delete the example's exchange and queues at the end")
	flag.Parse()
	if err := run(*url, *cleanup); err != nil {
		log.Fatal(err)
	}
}

func run(url string, cleanup bool) error {
	dir, err := os.MkdirTemp("", "eventbus-amqp-example")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	b, err := bus.New(ctx, bus.Config{
		Backend:         amqp.Name,
		BackendSettings: map[string]any{"url": url, "connect_timeout": "5s"},
		Store:           bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(dir, "events.db")},
	})
	if err != nil {
		return err
	}
	defer b.Close()

	var wg sync.WaitGroup
	const n = 3
	wg.Add(2 * n)
	for _, consumer := range []string{"billing", "shipping"} {
		err := bus.HandleModel(b, consumer, topic, func(ctx context.Context, o Order) error {
			defer wg.Done()
			fmt.Printf("%-8s handled order %d (%s)\n", consumer, o.ID, o.Total)
			return nil
		})
		if err != nil {
			return err
		}
	}
	go func() { _ = b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case <-ctx.Done():
		return ctx.Err()
	}
	for i := 1; i <= n; i++ {
		msg, err := bus.NewModelMessage(Order{ID: i, Total: fmt.Sprintf("%d.99", i)})
		if err == nil {
			err = b.Publish(ctx, topic, msg)
		}
		if err != nil {
			return err
		}
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // rows are stored as the handlers return

	page, err := b.Store().List(ctx, modelevent.Filter{Topic: topic}, modelevent.ListOptions{Limit: 100})
	if err != nil {
		return err
	}
	fmt.Printf("\n%-26s %-9s %-10s %-9s %-10s %s\n", "ID", "DIRECTION", "MODEL", "HANDLER", "STATUS", "ATTEMPTS")
	for _, e := range page.Events {
		fmt.Printf("%-26s %-9s %-10s %-9s %-10s %d\n", e.ID, e.Direction, e.Model, e.Handler, e.Status, e.Attempts)
	}
	if err := b.Close(); err != nil {
		return err
	}
	if cleanup {
		return deleteTopology(url)
	}
	return nil
}

// deleteTopology deletes what the example declared.
func deleteTopology(url string) error {
	conn, err := amqp091.Dial(url)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	for _, q := range []string{topic + "_billing", topic + "_shipping"} {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			return err
		}
	}
	return ch.ExchangeDelete(topic, false, false)
}
