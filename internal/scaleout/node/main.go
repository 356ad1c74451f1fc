// Command node is the bus process of the scale-out tests (package scaleout): one runs
// on each simulated host. It reads its configuration from EVENTBUS_* variables, runs
// the same consumers as every other node, and publishes when asked:
//
//   - billing on "orders" always succeeds;
//   - fraud on "risky" always fails, so its events end poisoned; every run of its
//     handler prints "ran fraud <message uuid>" on stdout, which lets a test count runs.
//
// --publish N publishes N events on "orders" from --publishers goroutines at up to
// --rate events/s in all (0: as fast as the bus takes them), then keeps running until
// SIGINT/SIGTERM. A publish that fails is retried after 100 ms until it succeeds, so a
// published count is exact: it prints "published N" when done.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	_ "github.com/go-eventbus/eventbus/backends/all"
	"github.com/go-eventbus/eventbus/bus"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(1)
	}
}

func run() error {
	publish := flag.Int("publish", 0, "events to publish on \"orders\"")
	publishers := flag.Int("publishers", 16, "publishing goroutines")
	rate := flag.Float64("rate", 0, "events per second in all (0: unlimited)")
	risky := flag.Int("risky", 0, "events to publish on \"risky\" (their consumer always fails)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := bus.LoadConfig("")
	if err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := bus.New(ctx, cfg)
	if err != nil {
		return err
	}
	if err := b.Handle("billing", "orders", func(ctx context.Context, msg *message.Message) error {
		return nil
	}); err != nil {
		return err
	}
	var out sync.Mutex
	if err := b.Handle("fraud", "risky", func(ctx context.Context, msg *message.Message) error {
		out.Lock()
		fmt.Printf("ran fraud %s\n", msg.UUID)
		out.Unlock()
		return errors.New("fraud service rejected the order")
	}); err != nil {
		return err
	}
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(ctx) }()
	select {
	case <-b.Running():
	case err := <-runErr:
		return err
	}
	fmt.Println("running")

	var wg sync.WaitGroup
	if *publish > 0 || *risky > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := publishAll(ctx, b, "orders", *publish, *publishers, *rate)
			n += publishAll(ctx, b, "risky", *risky, 1, 0)
			out.Lock()
			fmt.Printf("published %d\n", n)
			out.Unlock()
		}()
	}
	<-ctx.Done()
	wg.Wait()
	closeErr := b.Close()
	if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return closeErr
}

// publishAll publishes n events on topic from workers goroutines, each retried until
// it is published, and returns how many were published before ctx ended.
func publishAll(ctx context.Context, b *bus.Bus, topic string, n, workers int, rate float64) int {
	var next, done atomic.Int64
	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer t.Stop()
		tick = t.C
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if tick != nil {
					select {
					case <-tick:
					case <-ctx.Done():
						return
					}
				}
				msg := bus.NewMessage([]byte(`{"amount":42}`))
				for {
					err := b.Publish(ctx, topic, msg)
					if err == nil {
						done.Add(1)
						break
					}
					if ctx.Err() != nil {
						return
					}
					slog.Warn("publish failed; retrying", "topic", topic, "err", err)
					select {
					case <-time.After(100 * time.Millisecond):
					case <-ctx.Done():
						return
					}
					msg = msg.Copy()
				}
			}
		}()
	}
	wg.Wait()
	return int(done.Load())
}
