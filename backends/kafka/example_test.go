package kafka_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/go-eventbus/eventbus/backends/kafka"
	"github.com/go-eventbus/eventbus/backends/kafka/schemaregistrytest"
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

// Example_schemaRegistry publishes JSON that travels as Confluent wire-format Avro: the
// topic's schema is registered in a schema registry (here the in-process
// schemaregistrytest one), the handler gets JSON back, and a payload that does not
// match the schema is refused at Publish, naming the field.
func Example_schemaRegistry() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		panic(err)
	}
	defer cluster.Close()
	registry := schemaregistrytest.New()
	defer registry.Close()
	id, _, err := registry.Register("orders-value", `{"type":"record","name":"Order","namespace":"shop",
		"fields":[{"name":"id","type":"long"},{"name":"total","type":"double"}]}`)
	if err != nil {
		panic(err)
	}
	dir, _ := os.MkdirTemp("", "kafka-schema-example")
	defer os.RemoveAll(dir)

	b, err := bus.New(context.Background(), bus.Config{
		Backend: "kafka",
		BackendSettings: map[string]any{
			"broker_hosts":        cluster.ListenAddrs(),
			"schema_registry_url": registry.URL(),
			"schema_registry":     map[string]any{"topics": []string{"orders"}}, // subject orders-value
		},
		Store: bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(dir, "events.db")},
	})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	handled := make(chan *message.Message, 1)
	_ = b.Handle("billing", "orders", func(ctx context.Context, msg *message.Message) error {
		handled <- msg
		return nil
	})
	go func() { _ = b.Run(context.Background()) }()
	<-b.Running()

	type Order struct {
		ID    int64   `json:"id"`
		Total float64 `json:"total"`
	}
	order, err := bus.NewModelMessage(Order{ID: 42, Total: 9.5})
	if err == nil {
		err = b.Publish(context.Background(), "orders", order)
	}
	if err != nil {
		panic(err)
	}
	msg := <-handled
	fmt.Println("billing handled", string(msg.Payload), "schema id", msg.Metadata.Get(kafka.MetadataSchemaID) == fmt.Sprint(id))

	bad := message.NewMessage("", []byte(`{"id":43,"total":"a lot"}`))
	err = b.Publish(context.Background(), "orders", bad)
	fmt.Println(strings.Replace(err.Error(), fmt.Sprint(id), "N", 1))
	// Output:
	// billing handled {"id":42,"total":9.5} schema id true
	// eventbus: publish "orders": kafka: publish "orders": encode with schema N (orders-value): field "total": want double, got string "a lot"
}
