package main

import (
	"context"
	"flag"
	"fmt"
	"os"

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
