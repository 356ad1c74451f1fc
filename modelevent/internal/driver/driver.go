// Package driver is the registry of the store's database drivers. Each of the packages
// modelevent/sqlite, modelevent/postgres and modelevent/mysql registers one from init,
// as database/sql drivers do, so a program links only the drivers it imports; package
// modelevent opens stores through it. It lives apart from modelevent so that
// modelevent's own tests can import the driver packages.
package driver

import (
	"database/sql"
	"fmt"
	"sort"
	"sync"
)

// Driver opens a store's database with one database/sql driver and recognises that
// driver's errors. The dialect's SQL (placeholders, upserts, DDL) stays in modelevent.
type Driver interface {
	// Open returns a handle on the database at dsn, with the settings the store
	// relies on added when dsn lacks them. It does not connect.
	Open(dsn string) (*sql.DB, error)
	// IsDataError reports whether err, returned by this driver, is the database
	// refusing a row for its data (a constraint, a value the column cannot hold)
	// rather than failing to run the statement (unreachable, a lock, a timeout).
	IsDataError(err error) bool
}

var (
	mu      sync.RWMutex
	drivers = map[string]Driver{}
)

// Register makes d the driver of dialect. It panics if dialect is empty, d is nil or
// dialect already has a driver.
func Register(dialect string, d Driver) {
	mu.Lock()
	defer mu.Unlock()
	if dialect == "" {
		panic("modelevent: Register driver with an empty dialect")
	}
	if d == nil {
		panic(fmt.Sprintf("modelevent: Register driver %q is nil", dialect))
	}
	if _, dup := drivers[dialect]; dup {
		panic(fmt.Sprintf("modelevent: Register called twice for driver %q", dialect))
	}
	drivers[dialect] = d
}

// Lookup returns the driver of dialect, if one is registered.
func Lookup(dialect string) (Driver, bool) {
	mu.RLock()
	defer mu.RUnlock()
	d, ok := drivers[dialect]
	return d, ok
}

// Dialects returns the dialects that have a driver, sorted.
func Dialects() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(drivers))
	for name := range drivers {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// IsDataError reports whether any registered driver recognises err as a data error.
// Each driver matches only its own error types, so the order does not matter.
func IsDataError(err error) bool {
	mu.RLock()
	defer mu.RUnlock()
	for _, d := range drivers {
		if d.IsDataError(err) {
			return true
		}
	}
	return false
}
