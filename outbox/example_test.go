package outbox_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/go-eventbus/eventbus/modelevent"
	"github.com/go-eventbus/eventbus/outbox"
)

// Example writes a message in a SQLite transaction and relays it to a Watermill
// publisher once the transaction has committed. Programs using the bus call
// Bus.PublishTx and Outbox.NewRelay instead.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "outbox-example")
	defer os.RemoveAll(dir)
	store, err := modelevent.Open(ctx, "sqlite", filepath.Join(dir, "app.db"))
	if err != nil {
		panic(err)
	}
	defer store.Close()
	db := store.DB()
	cfg := outbox.Config{Dialect: modelevent.DialectSQLite, PollInterval: 10 * time.Millisecond}

	broker := gochannel.NewGoChannel(gochannel.Config{}, nil)
	received, _ := broker.Subscribe(ctx, "shop.orders")
	relay, err := outbox.NewRelay(ctx, db, cfg, outbox.RelayOptions{Publisher: broker})
	if err != nil {
		panic(err)
	}
	go func() { _ = relay.Run(ctx) }()
	defer relay.Close()

	tx, _ := db.BeginTx(ctx, nil)
	pub, err := outbox.NewTxPublisher(tx, cfg)
	if err != nil {
		panic(err)
	}
	if err := pub.Publish("shop.orders", message.NewMessage("order-42-created", []byte(`{"id":42}`))); err != nil {
		panic(err)
	}
	if err := tx.Commit(); err != nil { // nothing is sent before this
		panic(err)
	}
	msg := <-received
	msg.Ack()
	fmt.Println(msg.UUID, string(msg.Payload))
	// Output: order-42-created {"id":42}
}
