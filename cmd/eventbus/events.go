package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, "Usage: eventbus events <list|show|retry|replay|redrive|delete|prune> [flags]\n\n"+
			"  list     list recorded events, newest first, with filters\n"+
			"  show     show one event with its payload, metadata and attempts\n"+
			"  retry    run the event's consumer again on it (or every event matching filters)\n"+
			"  replay   publish the event's message again to its topic, to every consumer\n"+
			"  redrive  publish a poisoned message again, for the consumer that poisoned it\n"+
			"  delete   delete a poisoned or failed event with its attempts (resolved by hand)\n"+
			"  prune    delete old events with their attempts (retention), or count them")
		if len(args) == 0 {
			return usageError{"events: missing subcommand (list, show, retry, replay, redrive, delete, prune)"}
		}
		return nil
	}
	switch args[0] {
	case "list":
		return runEventsList(ctx, args[1:], stdout, stderr)
	case "show":
		return runEventsShow(ctx, args[1:], stdout, stderr)
	case "retry", "replay", "redrive":
		return runEventAction(ctx, control.CommandKind(args[0]), args[1:], stdout, stderr)
	case "prune":
		return runEventsPrune(ctx, args[1:], stdout, stderr)
	case "delete":
		return runEventsDelete(ctx, args[1:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("events: unknown subcommand %q (accepted: list, show, retry, replay, redrive, delete, prune)", args[0])}
}

// filterFlags are the event filters shared by list and the bulk commands.
type filterFlags struct {
	status, direction, topic, model, handler, text, correlation string
	since                                                       time.Duration
}

func (f *filterFlags) register(fs interface {
	StringVar(*string, string, string, string)
	DurationVar(*time.Duration, string, time.Duration, string)
}) {
	fs.StringVar(&f.status, "status", "", "only these statuses, comma-separated ("+statusNames()+")")
	fs.StringVar(&f.direction, "direction", "", "produced or consumed")
	fs.StringVar(&f.topic, "topic", "", "only this topic")
	fs.StringVar(&f.model, "model", "", "only this model, e.g. shop.Order")
	fs.StringVar(&f.handler, "handler", "", "only this consumer")
	fs.StringVar(&f.text, "text", "", "substring of the id, message UUID, payload or error")
	fs.StringVar(&f.correlation, "correlation", "", "only this correlation id")
	fs.DurationVar(&f.since, "since", 0, "only events created within this duration, e.g. 1h")
}

func statusNames() string {
	var s []string
	for _, st := range modelevent.Statuses {
		s = append(s, string(st))
	}
	return strings.Join(s, ", ")
}

func (f *filterFlags) filter() (modelevent.Filter, error) {
	out := modelevent.Filter{Topic: f.topic, Model: f.model, Handler: f.handler, Text: f.text, CorrelationID: f.correlation}
	if f.direction != "" {
		d := modelevent.Direction(f.direction)
		if !d.Valid() {
			return out, usageError{fmt.Sprintf("--direction: %q is not a direction (accepted: produced, consumed)", f.direction)}
		}
		out.Direction = d
	}
	if f.status != "" {
		for _, s := range strings.Split(f.status, ",") {
			st := modelevent.Status(strings.TrimSpace(s))
			if !st.Valid() {
				return out, usageError{fmt.Sprintf("--status: %q is not a status (accepted: %s)", s, statusNames())}
			}
			out.Statuses = append(out.Statuses, st)
		}
	}
	if f.since > 0 {
		out.Since = time.Now().Add(-f.since)
	}
	return out, nil
}

func runEventsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("events list", "events list [--status S] [--direction D] [--topic T] [--model M] [--handler H] [--text X] [--since D] [--limit N] [--cursor C] [--json]", stdout)
	configPath := configFlag(fs)
	var ff filterFlags
	ff.register(fs)
	limit := fs.Int("limit", 50, "events per page (at most 1000)")
	cursor := fs.String("cursor", "", "continue after this page cursor (printed after a full page)")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	f, err := ff.filter()
	if err != nil {
		return err
	}
	if *limit < 1 || *limit > 1000 {
		return usageError{fmt.Sprintf("--limit: %d is out of range (1 to 1000)", *limit)}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	store, err := openExistingStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	page, err := store.List(ctx, f, modelevent.ListOptions{Limit: *limit, Cursor: *cursor})
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, page)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tDIRECTION\tSTATUS\tATTEMPTS\tTOPIC\tHANDLER\tMODEL\tLAST ERROR")
	for _, e := range page.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", e.ID, e.CreatedAt.Local().Format("2006-01-02 15:04:05"),
			e.Direction, e.Status, e.Attempts, e.Topic, dash(e.Handler), dash(e.Model), dash(oneLine(e.LastError, 60)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.NextCursor != "" {
		fmt.Fprintf(stdout, "more: --cursor %s\n", page.NextCursor)
	}
	return nil
}

func runEventsShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("events show", "events show ID [--json]", stdout)
	configPath := configFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"events show: want exactly one event ID"}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	store, err := openExistingStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	e, err := store.Get(ctx, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, e)
	}
	printEvent(stdout, e)
	return nil
}

func printEvent(w io.Writer, e modelevent.ModelEvent) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("ID", e.ID)
	row("Message UUID", e.MessageUUID)
	row("Direction", string(e.Direction))
	row("Status", string(e.Status))
	row("Topic", e.Topic)
	row("Handler", dash(e.Handler))
	row("Model", dash(e.Model))
	row("Backend", e.Backend)
	row("Correlation ID", dash(e.CorrelationID))
	row("Attempts", fmt.Sprint(e.Attempts))
	row("Created", e.CreatedAt.Local().Format(time.RFC3339Nano))
	row("Updated", e.UpdatedAt.Local().Format(time.RFC3339Nano))
	if e.LastError != "" {
		row("Last error", oneLine(e.LastError, 200))
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\nMetadata:")
	meta, _ := json.MarshalIndent(e.Metadata, "  ", "  ")
	fmt.Fprintf(w, "  %s\n", meta)
	fmt.Fprintln(w, "\nPayload:")
	fmt.Fprintf(w, "  %s\n", payloadText(e.Payload))
	fmt.Fprintln(w, "\nAttempts:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tSTARTED\tDURATION\tERROR")
	for i, a := range e.History {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", i+1, a.StartedAt.Local().Format("15:04:05.000"), a.Duration.Round(time.Microsecond), dash(oneLine(a.Error, 100)))
	}
	_ = tw.Flush()
}

// payloadText shows JSON indented, other UTF-8 text as is, and binary as a byte count.
func payloadText(p []byte) string {
	var v any
	if json.Unmarshal(p, &v) == nil {
		b, _ := json.MarshalIndent(v, "  ", "  ")
		return string(b)
	}
	if utf8.Valid(p) {
		return string(p)
	}
	return fmt.Sprintf("(%d bytes of binary data)", len(p))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = string(r[:max]) + "…"
	}
	return s
}

// runEventsDelete deletes a poisoned or failed event with its attempts: the operator
// resolved it and it leaves the failure lists.
func runEventsDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("events delete", "events delete ID [--yes] [--config FILE]", stdout)
	configPath := configFlag(fs)
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"events delete: want exactly one event ID"}
	}
	insp, closeFn, err := openInspector(ctx, *configPath)
	if err != nil {
		return err
	}
	defer closeFn()
	e, err := insp.Event(ctx, pos[0])
	if err != nil {
		return err
	}
	if !*yes {
		fmt.Fprintf(stdout, "Delete %s event %s of %s (%s) with its attempts? Its message is not published again. [y/N] ", e.Status, e.ID, e.Handler, oneLine(e.LastError, 60))
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintln(stdout, "nothing done")
			return nil
		}
	}
	if err := insp.Delete(ctx, e.ID); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "deleted %s event %s of %s\n", e.Status, e.ID, e.Handler)
	return nil
}
