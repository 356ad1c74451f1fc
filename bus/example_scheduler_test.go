package bus_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// A consumer whose retries wait in the store, not in its stream: the first attempt
// fails, the message is acked, and the bus runs it again from the store when due.
func ExampleBus_HandleWith() {
	dir, _ := os.MkdirTemp("", "eventbus-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	b, err := bus.New(ctx, bus.Config{
		Store:     bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(dir, "events.db")},
		Retry:     middleware.RetryConfig{MaxRetries: 3, InitialInterval: 50 * time.Millisecond},
		Scheduler: bus.SchedulerConfig{PollInterval: 10 * time.Millisecond},
	})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	done := make(chan struct{})
	attempts := 0
	yes := true
	b.HandleWith("mailer", "signups", func(ctx context.Context, msg *message.Message) error {
		attempts++
		if attempts == 1 {
			return errors.New("smtp timeout")
		}
		close(done)
		return nil
	}, bus.ConsumerOptions{RetryMode: middleware.RetryScheduled, Idempotent: &yes})
	go b.Run(ctx)
	<-b.Running()
	b.Publish(ctx, "signups", message.NewMessage("", []byte(`{"email":"ada@example.com"}`)))
	<-done
	fmt.Println("sent after", attempts, "attempts")
	// Output: sent after 2 attempts
}

// An event kept in the store until its time, then published by a live bus process.
func ExampleBus_PublishIn() {
	dir, _ := os.MkdirTemp("", "eventbus-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	b, err := bus.New(ctx, bus.Config{
		Store:     bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(dir, "events.db")},
		Scheduler: bus.SchedulerConfig{PollInterval: 10 * time.Millisecond},
	})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	got := make(chan string)
	b.Handle("reminders", "reminders", func(ctx context.Context, msg *message.Message) error {
		got <- string(msg.Payload)
		return nil
	})
	go b.Run(ctx)
	<-b.Running()
	ids, _ := b.PublishIn(ctx, 100*time.Millisecond, "reminders", message.NewMessage("", []byte("renew your plan")))
	ev, _ := b.Store().Get(ctx, ids[0])
	fmt.Println(ev.Status)
	fmt.Println(<-got)
	bustestWait(func() bool { ev, _ = b.Store().Get(ctx, ids[0]); return ev.Status == modelevent.StatusPublished })
	fmt.Println(ev.Status)
	// Output:
	// scheduled
	// renew your plan
	// published
}

// bustestWait polls cond until it holds (at most 10s).
func bustestWait(cond func() bool) {
	for deadline := time.Now().Add(10 * time.Second); !cond() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}
