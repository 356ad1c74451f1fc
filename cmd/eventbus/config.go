package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

// configFlag adds --config to fs; EVENTBUS_CONFIG is its default.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", os.Getenv("EVENTBUS_CONFIG"), "config `file` (YAML or JSON); EVENTBUS_* variables override its keys; none: the embedded default")
}

// loadConfig reads the config file (if any) and the environment, with defaults.
func loadConfig(path string) (bus.Config, error) {
	cfg, err := bus.LoadConfig(path)
	if err != nil {
		return bus.Config{}, err
	}
	if cfg.Store.Driver == "" {
		cfg.Store.Driver = bus.DefaultStoreDriver
	}
	if cfg.Store.DSN == "" && cfg.Store.Driver == "sqlite" {
		cfg.Store.DSN = bus.DefaultSQLiteDSN
	}
	return cfg, nil
}

// openStore opens the configured store, applying migrations unless the config asks
// for manual migrations.
func openStore(ctx context.Context, cfg bus.Config) (*modelevent.SQLStore, error) {
	s, err := modelevent.Open(ctx, cfg.Store.Driver, cfg.Store.DSN)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if !cfg.Store.ManualMigrate {
		if err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	return s, nil
}

// errNoStore is returned by openExistingStore when the SQLite file does not exist.
var errNoStore = errors.New("no store found")

// openExistingStore is openStore for commands that read a store: a SQLite file that
// does not exist is an error naming the file and how to point at the right one,
// instead of a new empty database that shows nothing.
func openExistingStore(ctx context.Context, cfg bus.Config) (*modelevent.SQLStore, error) {
	if path, ok := sqliteFile(cfg); ok {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			abs, _ := filepath.Abs(path)
			return nil, fmt.Errorf("%w: the SQLite file %s does not exist (store.dsn %q). Point at your store with --config FILE or EVENTBUS_STORE_DSN=file:/path/to/eventbus.db (EVENTBUS_STORE_DRIVER for postgres or mysql), or create it with eventbus migrate",
				errNoStore, abs, cfg.Store.DSN)
		}
	}
	return openStore(ctx, cfg)
}

// sqliteFile is the file of a SQLite store's DSN ("file:x.db?…" or "x.db"); false for
// other drivers and in-memory databases.
func sqliteFile(cfg bus.Config) (string, bool) {
	if cfg.Store.Driver != "sqlite" {
		return "", false
	}
	dsn := cfg.Store.DSN
	path, q, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	if path == "" || path == ":memory:" || strings.Contains(q, "mode=memory") {
		return "", false
	}
	if u, err := url.PathUnescape(path); err == nil {
		path = u
	}
	return path, true
}
