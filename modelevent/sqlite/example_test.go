package sqlite_test

import (
	"context"
	"fmt"
	"log"

	"github.com/go-eventbus/eventbus/modelevent"
	_ "github.com/go-eventbus/eventbus/modelevent/sqlite" // registers the "sqlite" store driver
)

// A program that uses the store without package bus links the driver itself.
func Example() {
	ctx := context.Background()
	store, err := modelevent.Open(ctx, "sqlite", ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(store.Dialect(), modelevent.Drivers())
	// Output: sqlite [sqlite]
}
