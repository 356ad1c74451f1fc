// Command kafka publishes and consumes a few events through eventbus on Kafka and
// prints the ModelEvents they left.
//
//	go run ./examples/kafka -brokers 127.0.0.1:9092
//
// The broker address comes from -brokers, else EVENTBUS_KAFKA_BROKERS, else
// 127.0.0.1:9092. With -embedded it starts an in-process kfake broker instead, so the
// example runs without Kafka.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"

	_ "github.com/go-eventbus/eventbus/backends/kafka"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

type order struct {
	ID    int    `json:"id"`
	Total string `json:"total"`
}

func (order) EventModel() string { return "shop.Order" }

func main() {
	def := os.Getenv("EVENTBUS_KAFKA_BROKERS")
	if def == "" {
		def = "127.0.0.1:9092"
	}
	brokers := flag.String("brokers", def, "comma-separated Kafka brokers (host:port)")
	embedded := flag.Bool("embedded", false, "start an in-process kfake broker instead of using -brokers")
	flag.Parse()
	if err := run(*brokers, *embedded); err != nil {
		log.Fatal(err)
	}
}

func run(brokers string, embedded bool) error {
	if embedded {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return err
		}
		defer c.Close()
		brokers = strings.Join(c.ListenAddrs(), ",")
	}
	dir, err := os.MkdirTemp("", "eventbus-kafka-example")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dsn := "file:" + filepath.Join(dir, "events.db")

	ctx := context.Background()
	b, err := bus.New(ctx, bus.Config{
		Backend: "kafka",
		BackendSettings: map[string]any{
			"broker_hosts":    brokers,
			"consumer_group":  "example",
			"connect_timeout": "5s",
		},
		Store: bus.StoreConfig{Driver: "sqlite", DSN: dsn},
	})
	if err != nil {
		return err
	}
	defer b.Close()

	topic := fmt.Sprintf("example.orders.%d", time.Now().UnixNano())
	const n = 3
	var wg sync.WaitGroup
	wg.Add(2 * n)
	if err := bus.HandleModel(b, "billing", topic, func(ctx context.Context, o order) error {
		fmt.Printf("billing: order %d for %s\n", o.ID, o.Total)
		wg.Done()
		return nil
	}); err != nil {
		return err
	}
	if err := b.Handle("shipping", topic, func(ctx context.Context, msg *message.Message) error {
		fmt.Printf("shipping: message %s\n", msg.UUID)
		wg.Done()
		return nil
	}); err != nil {
		return err
	}
	go func() { _ = b.Run(ctx) }()
	<-b.Running()

	for i := 1; i <= n; i++ {
		msg, err := bus.NewModelMessage(order{ID: i, Total: "9.99"})
		if err == nil {
			err = b.Publish(ctx, topic, msg)
		}
		if err != nil {
			return err
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("events not handled within 30s")
	}
	if err := b.Close(); err != nil {
		return err
	}

	store, err := modelevent.Open(ctx, "sqlite", dsn)
	if err != nil {
		return err
	}
	defer store.Close()
	page, err := store.List(ctx, modelevent.Filter{Topic: topic}, modelevent.ListOptions{Limit: 100})
	if err != nil {
		return err
	}
	fmt.Println("\nModelEvents:")
	for _, e := range page.Events {
		fmt.Printf("%-9s %-8s %-10s %-9s attempts=%d %s\n", e.Direction, e.Handler, e.Model, e.Status, e.Attempts, e.Payload)
	}
	return nil
}
