package testenv

import (
	"path/filepath"
	"testing"
)

// Store is a store driver that tests run over, and how to get a fresh database of it.
type Store struct {
	// Driver is the store driver's name: "sqlite", "postgres" or "mysql".
	Driver string
	// DSN returns the DSN of a new, empty database, removed when t ends (a file in
	// t's temporary directory for SQLite).
	DSN func(t testing.TB) string
}

// Stores are the three SQL store drivers, for tests that run over each of them.
var Stores = []Store{
	{"sqlite", func(t testing.TB) string { return "file:" + filepath.Join(t.TempDir(), "events.db") }},
	{"postgres", FreshPostgres},
	{"mysql", FreshMySQL},
}
