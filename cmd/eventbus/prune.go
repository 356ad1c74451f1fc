package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

// pruneStatuses are the statuses `events prune --older-than` deletes without --status:
// every status but pending and retrying (work in progress).
var pruneStatuses = []modelevent.Status{
	modelevent.StatusSucceeded, modelevent.StatusFailed, modelevent.StatusPoisoned,
	modelevent.StatusPublished, modelevent.StatusPublishFailed,
}

func runEventsPrune(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("events prune", "events prune --older-than D [--status S] [--max-rows N] [--commands D] [--batch-size N] [--dry-run] [--json]\n"+
		"       eventbus events prune [--dry-run]   (the config's retention)", stdout)
	configPath := configFlag(fs)
	olderThan := fs.String("older-than", "", "delete events recorded longer ago than this, e.g. 7d, 36h (d is 24h)")
	status := fs.String("status", "", "only these statuses, comma-separated (default: all but pending and retrying)")
	maxRows := fs.Int64("max-rows", 0, "keep at most this many rows: delete the oldest beyond (never pending or retrying)")
	commands := fs.String("commands", "", "also delete finished commands older than this, e.g. 7d")
	batch := fs.Int("batch-size", modelevent.DefaultPruneBatch, "rows deleted per transaction")
	dryRun := fs.Bool("dry-run", false, "count what would be deleted; delete nothing")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("events prune: unexpected argument %q (filters are flags)", pos[0])}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	opts, err := pruneOptions(cfg.Retention, *olderThan, *status, *maxRows, *commands, *batch)
	if err != nil {
		return err
	}
	opts.DryRun = *dryRun
	store, err := openExistingStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	res, err := store.Prune(ctx, opts)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(res); jerr != nil {
			return jerr
		}
		return err
	}
	verb := "deleted"
	if res.DryRun {
		verb = "would delete"
	}
	fmt.Fprintf(stdout, "%s %d events, %d attempts, %d commands in %d batches (%s)\n", verb, res.Events, res.Attempts, res.Commands, res.Batches, res.Duration.Round(time.Millisecond))
	var sts []string
	for st := range res.ByStatus {
		sts = append(sts, string(st))
	}
	sort.Strings(sts)
	for _, st := range sts {
		fmt.Fprintf(stdout, "  %-15s %d\n", st, res.ByStatus[modelevent.Status(st)])
	}
	if res.FreedPages > 0 {
		fmt.Fprintf(stdout, "gave %d free pages back to the file system\n", res.FreedPages)
	}
	return err
}

// pruneOptions builds the prune from the flags or, with none of --older-than and
// --max-rows, from the config's retention.
func pruneOptions(r bus.RetentionConfig, olderThan, status string, maxRows int64, commands string, batch int) (modelevent.PruneOptions, error) {
	var opts modelevent.PruneOptions
	if batch < 1 || batch > 10000 {
		return opts, usageError{fmt.Sprintf("--batch-size: %d is out of range (1 to 10000)", batch)}
	}
	if maxRows < 0 {
		return opts, usageError{fmt.Sprintf("--max-rows: must be ≥ 0, got %d", maxRows)}
	}
	if olderThan == "" && maxRows == 0 {
		if status != "" {
			return opts, usageError{"--status: needs --older-than"}
		}
		if !r.Enabled() {
			return opts, usageError{"--older-than: required (e.g. --older-than 7d), unless the config sets retention"}
		}
		opts = r.PruneOptions()
	} else {
		sts := pruneStatuses
		if status != "" {
			sts = nil
			for _, s := range strings.Split(status, ",") {
				st := modelevent.Status(strings.TrimSpace(s))
				if !st.Valid() {
					return opts, usageError{fmt.Sprintf("--status: %q is not a status (accepted: %s)", s, statusNames())}
				}
				sts = append(sts, st)
			}
		}
		if olderThan != "" {
			age, err := bus.ParseDuration(olderThan)
			if err != nil || age <= 0 {
				return opts, usageError{fmt.Sprintf("--older-than: %q is not a positive duration (e.g. 7d, 36h, 90m; d is 24h)", olderThan)}
			}
			opts.MaxAge = map[modelevent.Status]time.Duration{}
			for _, st := range sts {
				opts.MaxAge[st] = age
			}
		}
		opts.MaxRows = maxRows
	}
	if commands != "" {
		d, err := bus.ParseDuration(commands)
		if err != nil || d <= 0 {
			return opts, usageError{fmt.Sprintf("--commands: %q is not a positive duration (e.g. 7d; d is 24h)", commands)}
		}
		opts.CommandMaxAge = d
	}
	opts.BatchSize = batch
	return opts, nil
}
