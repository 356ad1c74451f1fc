// Command sql publishes and consumes a few events through an eventbus Bus whose broker
// is a SQL database (PostgreSQL or MySQL/MariaDB, through watermill-sql), with the
// ModelEvents stored in the same database, and prints the ModelEvents of this run.
//
//	go run ./examples/sql                                  # PostgreSQL on 127.0.0.1:5432
//	go run ./examples/sql -driver mysql                    # MariaDB/MySQL on 127.0.0.1:3306
//	go run ./examples/sql -driver postgres -dsn postgres://app:secret@db:5432/app
//	SQL_DRIVER=mysql SQL_DSN='app:secret@tcp(db:3306)/app' go run ./examples/sql
//
// It creates the tables eventbus_messages_examples.orders and
// eventbus_offsets_examples.orders (plus eventbus_publish_locks on MySQL) and the
// ModelEvent store's tables, and leaves them: run it again and the consumers, whose
// offsets are kept, receive only the new events.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"sync"
	"time"

	sqlbackend "github.com/go-eventbus/eventbus/backends/sql"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

// Order is the example's event.
type Order struct {
	ID    int    `json:"id"`
	Total string `json:"total"`
	// Run tells this run's orders from those of earlier runs, which a consumer that
	// missed them receives too: the messages stay in the database.
	Run string `json:"run"`
}

// EventModel names the model of the ModelEvents.
func (Order) EventModel() string { return "shop.Order" }

const topic = "examples.orders"

var defaultDSN = map[string]string{
	sqlbackend.DriverPostgres: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
	sqlbackend.DriverMySQL:    "root@tcp(127.0.0.1:3306)/test?parseTime=true",
}

func main() {
	driver := flag.String("driver", envOr("SQL_DRIVER", sqlbackend.DriverPostgres), "postgres or mysql (env SQL_DRIVER)")
	dsn := flag.String("dsn", os.Getenv("SQL_DSN"), "data source name (env SQL_DSN; default: the local test database of -driver)")
	verbose := flag.Bool("v", false, "log the bus's and Watermill's info messages")
	flag.Parse()
	if *dsn == "" {
		*dsn = defaultDSN[*driver]
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if err := run(*driver, *dsn, logger); err != nil {
		log.Fatal(err)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(driver, dsn string, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The broker and the ModelEvent store share one database.
	b, err := bus.New(ctx, bus.Config{
		Backend:         sqlbackend.Name,
		BackendSettings: map[string]any{"driver": driver, "dsn": dsn, "connect_timeout": "5s"},
		Store:           bus.StoreConfig{Driver: driver, DSN: dsn},
		Logger:          logger,
	})
	if err != nil {
		return err
	}
	defer b.Close()

	run := time.Now().Format(time.RFC3339Nano)
	var wg sync.WaitGroup
	var seen sync.Map
	const n = 3
	wg.Add(2 * n)
	for _, consumer := range []string{"example-billing", "example-shipping"} {
		err := bus.HandleModel(b, consumer, topic, func(ctx context.Context, o Order) error {
			fmt.Printf("%-16s handled order %d (%s) of run %s\n", consumer, o.ID, o.Total, o.Run)
			if _, dup := seen.LoadOrStore(fmt.Sprint(consumer, o.Run, o.ID), true); !dup && o.Run == run {
				wg.Done()
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	go func() { _ = b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case <-ctx.Done():
		return ctx.Err()
	}
	ids := map[string]bool{}
	for i := 1; i <= n; i++ {
		msg, err := bus.NewModelMessage(Order{ID: i, Total: fmt.Sprintf("%d.99", i), Run: run})
		if err == nil {
			err = b.Publish(ctx, topic, msg)
		}
		id := msg.UUID
		if err != nil {
			return err
		}
		ids[id] = true
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // rows are stored as the handlers return

	page, err := b.Store().List(ctx, modelevent.Filter{Topic: topic}, modelevent.ListOptions{Limit: 100})
	if err != nil {
		return err
	}
	fmt.Printf("\n%-26s %-9s %-10s %-16s %-10s %s\n", "ID", "DIRECTION", "MODEL", "HANDLER", "STATUS", "ATTEMPTS")
	for _, e := range page.Events {
		if ids[e.MessageUUID] {
			fmt.Printf("%-26s %-9s %-10s %-16s %-10s %d\n", e.ID, e.Direction, e.Model, e.Handler, e.Status, e.Attempts)
		}
	}
	if backlog, ok := b.Backend().(bus.Backlogger); ok {
		for _, c := range []string{"example-billing", "example-shipping"} {
			left, err := backlog.Backlog(ctx, c, topic)
			if err != nil {
				return err
			}
			fmt.Printf("backlog of %s: %d\n", c, left)
		}
	}
	return b.Close()
}
