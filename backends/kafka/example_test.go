package kafka_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

// Example runs a bus on Kafka (here an in-process kfake broker): it publishes an event,
// a consumer handles it, and both sides are recorded as ModelEvents.
func Example() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		panic(err)
	}
	defer cluster.Close()
	dir, _ := os.MkdirTemp("", "kafka-example")
	defer os.RemoveAll(dir)

	b, err := bus.New(context.Background(), bus.Config{
		Backend: "kafka",
		BackendSettings: map[string]any{
			"broker_hosts":   strings.Join(cluster.ListenAddrs(), ","), // a list or "h1:p,h2:p"
			"consumer_group": "shop",
		},
		Store: bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(dir, "events.db")},
	})
	if err != nil {
		panic(err)
	}
	defer b.Close()

	handled := make(chan string, 1)
	_ = b.Handle("billing", "orders", func(ctx context.Context, msg *message.Message) error {
		handled <- string(msg.Payload)
		return nil
	})
	go func() { _ = b.Run(context.Background()) }()
	<-b.Running()

	msg := message.NewMessage("", []byte(`{"id":42}`))
	msg.Metadata.Set(modelevent.MetadataKey, "order-42") // the Kafka message key
	if err := b.Publish(context.Background(), "orders", msg); err != nil {
		panic(err)
	}
	fmt.Println("billing handled", <-handled)
	_ = b.Close() // flushes the rows

	store, err := modelevent.Open(context.Background(), "sqlite", "file:"+filepath.Join(dir, "events.db"))
	if err != nil {
		panic(err)
	}
	defer store.Close()
	page, err := store.List(context.Background(), modelevent.Filter{Topic: "orders"}, modelevent.ListOptions{Limit: 10})
	if err != nil {
		panic(err)
	}
	for i := len(page.Events) - 1; i >= 0; i-- {
		e := page.Events[i]
		fmt.Println(e.Direction, e.Handler, e.Status, e.Backend)
	}
	// Output:
	// billing handled {"id":42}
	// produced  published kafka
	// consumed billing succeeded kafka
}
