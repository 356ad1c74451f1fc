package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/go-eventbus/eventbus/internal/jsonfmt"
	"github.com/go-eventbus/eventbus/modelevent"
)

// runRetrying is `eventbus retrying`: the scheduled retries, and "retry now" or
// "cancel" (mark failed) on one (docs/retries.md).
func runRetrying(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSchedule(ctx, "retrying", modelevent.ScheduleRetry, args, stdout, stderr)
}

// runScheduled is `eventbus scheduled`: the delayed publishes, and "cancel" or
// "reschedule" on one.
func runScheduled(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSchedule(ctx, "scheduled", modelevent.SchedulePublish, args, stdout, stderr)
}

func runSchedule(ctx context.Context, name string, kind modelevent.ScheduleKind, args []string, stdout, stderr io.Writer) error {
	usage := name + " [--limit N] [--json] | --cancel EVENT_ID"
	if kind == modelevent.ScheduleRetry {
		usage += " | --retry-now EVENT_ID"
	} else {
		usage += " | --at TIME EVENT_ID"
	}
	fs := newFlagSet(name, usage+" [--config FILE]", stderr)
	configPath := configFlag(fs)
	limit := fs.Int("limit", 100, "at most this many, soonest due first")
	asJSON := fs.Bool("json", false, "print JSON")
	cancel := fs.String("cancel", "", "cancel the entry of this event (a retry ends failed, a publish cancelled)")
	var retryNow, at *string
	if kind == modelevent.ScheduleRetry {
		retryNow = fs.String("retry-now", "", "make the retry of this event due now")
	} else {
		at = fs.String("at", "", "reschedule the publish of the event given as argument to this RFC 3339 time")
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	insp, closeFn, err := openInspector(ctx, *configPath)
	if err != nil {
		return err
	}
	defer closeFn()
	switch {
	case *cancel != "":
		if err := insp.CancelScheduled(ctx, *cancel); err != nil {
			return err
		}
		_, err := fmt.Fprintln(stdout, "cancelled", *cancel)
		return err
	case retryNow != nil && *retryNow != "":
		if err := insp.RetryNow(ctx, *retryNow); err != nil {
			return err
		}
		_, err := fmt.Fprintln(stdout, "retry of", *retryNow, "due now")
		return err
	case at != nil && *at != "":
		if len(pos) != 1 {
			return usageError{name + " --at: want exactly one EVENT_ID"}
		}
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return usageError{fmt.Sprintf("%s --at: %q is not an RFC 3339 time (e.g. 2026-12-01T12:00:00Z)", name, *at)}
		}
		if err := insp.RescheduleScheduled(ctx, pos[0], t); err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, "rescheduled", pos[0], "at", t.UTC().Format(time.RFC3339))
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q (usage: eventbus %s)", name, pos[0], usage)}
	}
	list, err := insp.Scheduled(ctx, kind, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, jsonfmt.List(list))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tTOPIC\tCONSUMER\tNEXT ATTEMPT\tATTEMPTS\tCLAIMED BY\tLAST ERROR")
	for _, e := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", dash(e.Event.ID), e.Topic, dash(e.Consumer),
			e.NextAttemptAt.Format(time.RFC3339), e.Attempts, dash(e.ClaimedBy), dash(oneLine(e.LastError, 60)))
	}
	return tw.Flush()
}
