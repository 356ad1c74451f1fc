package modelevent

import (
	"fmt"
	"strings"

	"github.com/go-eventbus/eventbus/modelevent/internal/driver"
)

// Drivers returns the store drivers linked into this program, sorted: the names Open
// accepts. A driver is linked by a blank import of its package,
// github.com/go-eventbus/eventbus/modelevent/<name>; package bus links sqlite.
func Drivers() []string { return driver.Dialects() }

// lookupDriver returns the linked driver of dialect, or an error naming the import that
// links it.
func lookupDriver(dialect string) (driver.Driver, error) {
	d, ok := driver.Lookup(dialect)
	if !ok {
		return nil, fmt.Errorf("modelevent: store driver %q is not linked into this program: add import _ %q (linked: %s)",
			dialect, "github.com/go-eventbus/eventbus/modelevent/"+dialect, strings.Join(Drivers(), ", "))
	}
	return d, nil
}
