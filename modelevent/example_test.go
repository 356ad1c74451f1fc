package modelevent_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/go-eventbus/eventbus/modelevent"
	_ "github.com/go-eventbus/eventbus/modelevent/sqlite" // the "sqlite" store driver
)

// Open a SQLite store, create its schema, record a message that failed once and then
// succeeded, and read it back with its attempt history.
func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "eventbus-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	store, err := modelevent.Open(ctx, "sqlite", "file:"+filepath.Join(dir, "eventbus.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	row := modelevent.ModelEvent{
		MessageUUID: "6f1c8a52-0d1e-4a53-9c1b-6a2b1f0f3c11", Direction: modelevent.Consumed,
		Handler: "billing", Topic: "orders", Model: "shop.Order", Backend: "memory",
		Payload: []byte(`{"order":42}`),
	}
	first, second := row, row
	first.Status, first.Attempts, first.LastError = modelevent.StatusRetrying, 1, "card declined"
	second.Status, second.Attempts = modelevent.StatusSucceeded, 1
	start := time.Now()
	changes := []modelevent.Change{
		{Event: first, NewAttempts: []modelevent.Attempt{{StartedAt: start, Duration: time.Millisecond, Error: "card declined"}}},
		{Event: second, NewAttempts: []modelevent.Attempt{{StartedAt: start.Add(time.Second), Duration: time.Millisecond}}},
	}
	// One transaction; both changes land on the same row.
	if err := store.Write(ctx, changes); err != nil {
		log.Fatal(err)
	}

	page, err := store.List(ctx, modelevent.Filter{Topic: "orders"}, modelevent.ListOptions{})
	if err != nil {
		log.Fatal(err)
	}
	e, err := store.Get(ctx, page.Events[0].ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(page.Events), e.Status, e.Attempts, e.LastError)
	for _, a := range e.History {
		fmt.Printf("attempt error=%q\n", a.Error)
	}
	// Output:
	// 1 succeeded 2 card declined
	// attempt error="card declined"
	// attempt error=""
}

// MigrationStatus tells which schema migrations a database has.
func ExampleSQLStore_MigrationStatus() {
	ctx := context.Background()
	store, err := modelevent.Open(ctx, "sqlite", ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	before, _ := store.MigrationStatus(ctx)
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	after, _ := store.MigrationStatus(ctx)
	fmt.Println(before[0].Version, before[0].Name, before[0].Applied, "→", after[0].Applied)
	// Output: 1 init false → true
}
