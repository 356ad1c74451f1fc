package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/middleware"
)

// runBench measures publish→handled throughput on the configured backend: bare
// Watermill (the backend's publisher and subscriber with a plain router handler) and
// the bus with recording, in both record modes, in the same run.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", "bench [--events N] [--publishers P] [--payload BYTES] [--modes durable,buffered] [--config FILE]", stderr)
	configPath := configFlag(fs)
	events := fs.Int("events", 20000, "events per run")
	publishers := fs.Int("publishers", 16, "goroutines publishing concurrently")
	payloadSize := fs.Int("payload", 100, "payload bytes")
	keepStore := fs.Bool("use-config-store", false, "record into the config's store instead of a fresh SQLite file")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if *events < 1 || *publishers < 1 || *payloadSize < 0 {
		return usageError{"bench: --events and --publishers must be ≥ 1, --payload ≥ 0"}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if cfg.Backend == "" {
		cfg.Backend = bus.DefaultBackend
	}
	payload := make([]byte, *payloadSize)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	host, _ := os.Hostname()
	fmt.Fprintf(stdout, "eventbus bench: backend %s, %d events, %d publishers, %d-byte payload, %d CPUs (%s, %s)\n",
		cfg.Backend, *events, *publishers, len(payload), runtime.NumCPU(), host, runtime.Version())

	raw, err := benchRaw(ctx, cfg, *events, *publishers, payload)
	if err != nil {
		return fmt.Errorf("bench raw watermill: %w", err)
	}
	fmt.Fprintf(stdout, "%-34s %10.0f events/s\n", "raw watermill (no recording)", raw)
	for _, mode := range []middleware.RecordMode{middleware.RecordDurable, middleware.RecordBuffered} {
		c := cfg
		c.Record.Mode = mode
		c.Process.Disabled = true
		if !*keepStore {
			dir, err := os.MkdirTemp("", "eventbus-bench")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			c.Store = bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(dir, "bench.db")}
		}
		rate, err := benchBus(ctx, c, *events, *publishers, payload)
		if err != nil {
			return fmt.Errorf("bench bus %s: %w", mode, err)
		}
		fmt.Fprintf(stdout, "%-34s %10.0f events/s  (%.2f of raw)\n", fmt.Sprintf("bus, %s recording to %s", mode, c.Store.Driver), rate, rate/raw)
	}
	return nil
}

// publishConcurrently publishes n messages from p goroutines.
func publishConcurrently(n, p int, payload []byte, publish func(*message.Message) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, p)
	for i := 0; i < p; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := publish(bus.NewMessage(payload)); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

func waitHandled(ctx context.Context, handled *atomic.Int64, n int) error {
	deadline := time.Now().Add(10 * time.Minute)
	for handled.Load() < int64(n) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("handled %d of %d", handled.Load(), n)
		}
		time.Sleep(200 * time.Microsecond)
	}
	return nil
}

func benchRaw(ctx context.Context, cfg bus.Config, n, p int, payload []byte) (float64, error) {
	backend, err := bus.OpenBackend(ctx, cfg.Backend, cfg.BackendSettings, bus.BackendOptions{})
	if err != nil {
		return 0, err
	}
	defer backend.Close()
	sub, err := backend.Subscriber("bench-raw")
	if err != nil {
		return 0, err
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		return 0, err
	}
	topic := "eventbus.bench.raw." + watermill.NewShortUUID()
	var handled atomic.Int64
	router.AddConsumerHandler("bench-raw", topic, sub, func(*message.Message) error { handled.Add(1); return nil })
	go func() { _ = router.Run(ctx) }()
	<-router.Running()
	defer router.Close()
	start := time.Now()
	if err := publishConcurrently(n, p, payload, func(m *message.Message) error { return backend.Publisher().Publish(topic, m) }); err != nil {
		return 0, err
	}
	if err := waitHandled(ctx, &handled, n); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func benchBus(ctx context.Context, cfg bus.Config, n, p int, payload []byte) (float64, error) {
	b, err := bus.New(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	topic := "eventbus.bench." + watermill.NewShortUUID()
	var handled atomic.Int64
	if err := b.Handle("bench", topic, func(context.Context, *message.Message) error { handled.Add(1); return nil }); err != nil {
		return 0, err
	}
	go func() { _ = b.Run(ctx) }()
	<-b.Running()
	start := time.Now()
	if err := publishConcurrently(n, p, payload, func(m *message.Message) error { return b.Publish(ctx, topic, m) }); err != nil {
		return 0, err
	}
	if err := waitHandled(ctx, &handled, n); err != nil {
		return 0, err
	}
	if err := b.Close(); err != nil { // every row flushed counts
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
