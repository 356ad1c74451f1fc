// Command natsclient is a bus on the nats backend without the embedded server: the
// footprint test runs it with embedded: true and expects the error naming the import.
package main

import (
	"context"
	"fmt"
	"os"

	_ "github.com/go-eventbus/eventbus/backends/nats"
	"github.com/go-eventbus/eventbus/bus"
)

func main() {
	cfg, err := bus.LoadConfig("") // EVENTBUS_* variables choose the backend
	if err == nil {
		var b *bus.Bus
		if b, err = bus.New(context.Background(), cfg); err == nil {
			err = b.Close()
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
