package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/go-eventbus/eventbus/internal/jsonfmt"
	"github.com/go-eventbus/eventbus/modelevent"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "migrate [--config FILE] [--status] [--json]", stdout)
	configPath := configFlag(fs)
	status := fs.Bool("status", false, "show which migrations are applied instead of applying them")
	asJSON := fs.Bool("json", false, "print the migrations as JSON")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	store, err := modelevent.Open(ctx, cfg.Store.Driver, cfg.Store.DSN)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer store.Close()
	if !*status {
		if err := store.Migrate(ctx); err != nil {
			return err
		}
	}
	states, err := store.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, jsonfmt.List(states))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
	for _, s := range states {
		applied := "no"
		if s.Applied {
			applied = s.AppliedAt.Local().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%04d\t%s\t%s\n", s.Version, s.Name, applied)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !*status {
		fmt.Fprintf(stdout, "store %s is up to date\n", cfg.Store.Driver)
	}
	return nil
}
