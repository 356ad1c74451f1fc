package amqp_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/go-eventbus/eventbus/backends/amqp"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/modelevent"
)

type order struct {
	ID int `json:"id"`
}

func (order) EventModel() string { return "shop.Order" }

// Example publishes three orders through a bus on RabbitMQ, consumes them with one
// consumer and lists the ModelEvents recorded for them.
func Example() {
	dir, _ := os.MkdirTemp("", "amqp-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	b, err := bus.New(ctx, bus.Config{
		Backend:         amqp.Name,
		BackendSettings: map[string]any{"url": testenv.DSN("amqp", amqp.DefaultURL)},
		Store:           bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(dir, "events.db")},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	topic := "example.orders." + watermill.NewShortUUID()
	handled := make(chan int, 3)
	_ = bus.HandleModel(b, "billing", topic, func(ctx context.Context, o order) error {
		handled <- o.ID
		return nil
	})
	go func() { _ = b.Run(ctx) }()
	<-b.Running()
	for id := 1; id <= 3; id++ {
		msg, err := bus.NewModelMessage(order{ID: id})
		if err == nil {
			err = b.Publish(ctx, topic, msg)
		}
		if err != nil {
			fmt.Println(err)
			return
		}
	}
	// The consumer handles messages in parallel (concurrency 16 by default), so they
	// may finish in any order.
	ids := []int{<-handled, <-handled, <-handled}
	sort.Ints(ids)
	for _, id := range ids {
		fmt.Println("billing handled order", id)
	}
	// A row is stored when its handler returns: wait for the three consumed rows.
	var page modelevent.Page
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		page, _ = b.Store().List(ctx, modelevent.Filter{Topic: topic}, modelevent.ListOptions{})
		if countSucceeded(page.Events) == 3 {
			break
		}
	}
	var lines []string
	for _, e := range page.Events {
		lines = append(lines, fmt.Sprintf("%s %s %s %s", e.Direction, e.Model, e.Handler, e.Status))
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// billing handled order 1
	// billing handled order 2
	// billing handled order 3
	// consumed shop.Order billing succeeded
	// consumed shop.Order billing succeeded
	// consumed shop.Order billing succeeded
	// produced shop.Order  published
	// produced shop.Order  published
	// produced shop.Order  published
}

func countSucceeded(evs []modelevent.ModelEvent) int {
	n := 0
	for _, e := range evs {
		if e.Direction == modelevent.Consumed && e.Status == modelevent.StatusSucceeded {
			n++
		}
	}
	return n
}
