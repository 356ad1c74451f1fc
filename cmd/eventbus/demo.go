package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/go-eventbus/eventbus/admin"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

// Order is the demo's event.
type Order struct {
	ID       int     `json:"id"`
	Customer string  `json:"customer"`
	Total    float64 `json:"total"`
}

// EventModel names the demo's model.
func (Order) EventModel() string { return "shop.Order" }

const demoTopic = "shop.orders"

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "demo [--rate N] [--for D] [--db PATH] [--addr HOST:PORT] [--config FILE]", stdout)
	configPath := configFlag(fs)
	rate := fs.Float64("rate", 5, "events published per second")
	runFor := fs.Duration("for", 0, "stop after this long and print a final summary (0: until Ctrl-C)")
	db := fs.String("db", "", "SQLite file for the ModelEvents (default eventbus.db; overrides the config's store)")
	verbose := fs.Bool("v", false, "log the bus's lifecycle to stderr")
	addr := fs.String("addr", "127.0.0.1:8080", "serve the console here (\"off\": no console)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rate <= 0 || *rate > 100000 {
		return usageError{fmt.Sprintf("--rate: %v is out of range (0 < rate ≤ 100000)", *rate)}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if *db != "" {
		cfg.Store = bus.StoreConfig{Driver: "sqlite", DSN: "file:" + *db}
	}
	cfg.Metrics = newRegistry()
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if *runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *runFor)
		defer cancel()
	}

	b, err := bus.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := registerDemoConsumers(b); err != nil {
		return err
	}
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(ctx) }()
	select {
	case <-b.Running():
	case err := <-runErr:
		return err
	}
	start := time.Now().Add(-time.Second)
	fmt.Fprintf(stdout, "eventbus demo: backend %s, store %s %s, publishing %v events/s to %q (Ctrl-C to stop)\n",
		b.Config().Backend, b.Config().Store.Driver, redact(b.Config().Store.DSN), *rate, demoTopic)
	if *addr != "off" && *addr != "" {
		url, stopConsole, err := startConsole(ctx, b.Inspector(), *addr, admin.Options{}, stderr, append(healthRoutes(b.HealthHandler()), metricsRoute(b))...)
		if err != nil {
			return fmt.Errorf("%w (pick another with --addr, or --addr off)", err)
		}
		defer stopConsole(context.Background())
		fmt.Fprintf(stdout, "console: %s\n", url)
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		publishDemoOrders(ctx, b, *rate, stderr)
	}()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			printSummary(ctx, stdout, b.Store(), start, "")
			continue
		case <-ctx.Done():
		case err := <-runErr:
			wg.Wait()
			return err
		}
		break
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		return err
	}
	if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	// The bus flushed every row; read the final counts from a fresh store handle.
	store, err := openStore(context.Background(), b.Config())
	if err != nil {
		return err
	}
	defer store.Close()
	printSummary(context.Background(), stdout, store, start, "final: ")
	return nil
}

// registerDemoConsumers adds three consumers of the demo topic: one that always
// succeeds, one that fails twice per order before it succeeds, one that always fails
// (its orders end in the poison queue).
func registerDemoConsumers(b *bus.Bus) error {
	if err := bus.HandleModel(b, "billing", demoTopic, func(ctx context.Context, o Order) error {
		return nil
	}); err != nil {
		return err
	}
	var mu sync.Mutex
	tries := map[int]int{}
	if err := bus.HandleModel(b, "shipping", demoTopic, func(ctx context.Context, o Order) error {
		mu.Lock()
		defer mu.Unlock()
		tries[o.ID]++
		if tries[o.ID] <= 2 {
			return fmt.Errorf("carrier API timeout for order %d (try %d)", o.ID, tries[o.ID])
		}
		delete(tries, o.ID)
		return nil
	}); err != nil {
		return err
	}
	return bus.HandleModel(b, "fraud-check", demoTopic, func(ctx context.Context, o Order) error {
		return fmt.Errorf("fraud service rejected order %d: risk model unavailable", o.ID)
	})
}

func publishDemoOrders(ctx context.Context, b *bus.Bus, rate float64, stderr io.Writer) {
	customers := []string{"ada", "grace", "linus", "ken", "barbara"}
	interval := time.Duration(float64(time.Second) / rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for id := 1; ; id++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		o := Order{ID: id, Customer: customers[id%len(customers)], Total: float64(id%50) + 0.99}
		msg, err := bus.NewModelMessage(o)
		if err == nil {
			err = b.Publish(ctx, demoTopic, msg)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			fmt.Fprintln(stderr, "publish:", err)
		}
	}
}

func printSummary(ctx context.Context, w io.Writer, store modelevent.Store, since time.Time, prefix string) {
	st, err := store.Stats(ctx, modelevent.Filter{Since: since})
	if err != nil {
		if ctx.Err() == nil {
			fmt.Fprintln(w, "stats:", err)
		}
		return
	}
	s := st.ByStatus
	fmt.Fprintf(w, "%s%s  published %d  succeeded %d  retrying %d  failed %d  poisoned %d\n", prefix,
		time.Now().Format("15:04:05"), s[modelevent.StatusPublished], s[modelevent.StatusSucceeded],
		s[modelevent.StatusRetrying], s[modelevent.StatusFailed], s[modelevent.StatusPoisoned])
}

// redact hides a password in a DSN for display.
func redact(dsn string) string {
	for i := 0; i+3 < len(dsn); i++ {
		if dsn[i:i+3] == "://" {
			rest := dsn[i+3:]
			at := -1
			for j := 0; j < len(rest); j++ {
				if rest[j] == '@' {
					at = j
					break
				}
				if rest[j] == '/' {
					break
				}
			}
			if at < 0 {
				return dsn
			}
			user := rest[:at]
			for j := 0; j < len(user); j++ {
				if user[j] == ':' {
					return dsn[:i+3] + user[:j] + ":***" + rest[at:]
				}
			}
			return dsn
		}
	}
	return dsn
}
