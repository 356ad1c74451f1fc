package nats_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	_ "github.com/go-eventbus/eventbus/backends/nats"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

// Example runs a bus on an embedded NATS JetStream server: no external service, the
// messages persist in store_dir.
func Example() {
	dir, _ := os.MkdirTemp("", "eventbus-nats-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	b, err := bus.New(ctx, bus.Config{
		Backend: "nats",
		BackendSettings: map[string]any{
			"embedded":  true,
			"store_dir": filepath.Join(dir, "nats"),
		},
		Store: bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(dir, "events.db")},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	done := make(chan struct{})
	_ = b.Handle("greeter", "greetings", func(ctx context.Context, msg *message.Message) error {
		fmt.Printf("greeter got %s\n", msg.Payload)
		close(done)
		return nil
	})
	go func() { _ = b.Run(ctx) }()
	<-b.Running()
	_ = b.Publish(ctx, "greetings", message.NewMessage("", []byte("hello")))
	<-done
	// The consumed row is stored before the message is acked; wait for it.
	var page modelevent.Page
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		page, _ = b.Store().List(ctx, modelevent.Filter{Topic: "greetings", Statuses: []modelevent.Status{modelevent.StatusPublished, modelevent.StatusSucceeded}}, modelevent.ListOptions{})
		if len(page.Events) == 2 {
			break
		}
	}
	var lines []string
	for _, e := range page.Events {
		lines = append(lines, strings.TrimSpace(fmt.Sprint(e.Direction, " ", e.Status, " ", e.Handler)))
	}
	sort.Strings(lines)
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// greeter got hello
	// consumed succeeded greeter
	// produced published
}
