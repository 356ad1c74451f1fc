package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// The bus's chain on a Watermill router of your own: a raw Watermill handler that
// fails once gets recorded, retried and, had it kept failing, poisoned.
func ExampleChain() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "eventbus-example")
	defer os.RemoveAll(dir)
	store, err := modelevent.Open(ctx, "sqlite", "file:"+filepath.Join(dir, "events.db"))
	if err != nil {
		panic(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		panic(err)
	}
	rec, err := middleware.NewRecorder(store, middleware.RecorderConfig{Backend: "gochannel"})
	if err != nil {
		panic(err)
	}
	pubsub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	defer pubsub.Close()

	chain, err := middleware.Chain{
		Recorder:        rec,
		Retry:           middleware.RetryConfig{MaxRetries: 3, InitialInterval: time.Millisecond},
		PoisonPublisher: pubsub,
		PoisonTopic:     "poison",
	}.Middleware()
	if err != nil {
		panic(err)
	}
	router, _ := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	router.AddMiddleware(chain)
	done := make(chan struct{})
	tries := 0
	router.AddConsumerHandler("billing", "orders", pubsub, func(msg *message.Message) error {
		if tries++; tries == 1 {
			return errors.New("card service timeout")
		}
		close(done)
		return nil
	})
	go router.Run(ctx)
	<-router.Running()

	pubsub.Publish("orders", message.NewMessage(watermill.NewUUID(), []byte(`{"id":42}`)))
	<-done
	router.Close()
	if err := rec.Close(ctx); err != nil { // flushes the rows
		panic(err)
	}

	page, _ := store.List(ctx, modelevent.Filter{Handler: "billing"}, modelevent.ListOptions{})
	for _, e := range page.Events {
		fmt.Println(e.Direction, e.Topic, e.Handler, e.Status, e.Attempts)
	}
	// Output: consumed orders billing succeeded 2
}
