package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

// stdin is where confirmations are read; tests replace it.
var stdin io.Reader = os.Stdin

// openInspector opens the configured store and an Inspector over it (no live bus: the
// actions become commands that a running bus process executes).
func openInspector(ctx context.Context, configPath string) (*control.Inspector, func(), error) {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return nil, nil, err
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	insp := control.NewInspector(store, control.NewStore(store), control.InspectorOptions{})
	return insp, func() { store.Close() }, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func since(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

func runProcesses(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("processes", "processes [--config FILE] [--json]", stderr)
	configPath := configFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	insp, closeFn, err := openInspector(ctx, *configPath)
	if err != nil {
		return err
	}
	defer closeFn()
	ps, err := insp.Processes(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, ps)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tNAME\tHOST\tPID\tVERSION\tBACKEND\tSTARTED\tLAST SEEN\tSTATUS\tCONSUMERS")
	for _, p := range ps {
		status := "live"
		if p.Gone {
			status = "GONE"
		}
		var cs []string
		for _, c := range p.Consumers {
			cs = append(cs, c.Name+"="+c.State)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Name, p.Host, p.PID, p.Version, p.Backend,
			p.Started.Local().Format("2006-01-02 15:04:05"), since(p.LastSeen), status, strings.Join(cs, " "))
	}
	return tw.Flush()
}

func runConsumers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, "Usage: eventbus consumers <list|stop|start> [NAME] [--process ID] [--config FILE]\n\n  list   every consumer across live processes\n  stop   stop a consumer everywhere (or in one process); it takes effect within a heartbeat\n  start  start it again")
		if len(args) == 0 {
			return usageError{"consumers: missing subcommand (list, stop, start)"}
		}
		return nil
	}
	sub := args[0]
	fs := newFlagSet("consumers "+sub, "consumers "+sub+" [NAME] [--process ID] [--config FILE]", stderr)
	configPath := configFlag(fs)
	process := fs.String("process", "", "only in this process (see eventbus processes); default: every process")
	asJSON := fs.Bool("json", false, "print JSON (list)")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	insp, closeFn, err := openInspector(ctx, *configPath)
	if err != nil {
		return err
	}
	defer closeFn()
	switch sub {
	case "list":
		cs, err := insp.Consumers(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, cs)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CONSUMER\tTOPIC\tRUNNING\tSTOPPED\tPROCESSED\tFAILED\tIN FLIGHT\tBACKLOG\tLAST MESSAGE\tLAST ERROR")
		for _, c := range cs {
			backlog := "-"
			if c.Backlog >= 0 {
				backlog = fmt.Sprint(c.Backlog)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", c.Name, c.Topic, c.Running, c.Stopped, c.Processed, c.Failed, c.InFlight,
				backlog, since(c.LastAt), dash(oneLine(c.LastError, 60)))
		}
		return tw.Flush()
	case "stop", "start":
		if len(pos) != 1 {
			return usageError{fmt.Sprintf("consumers %s: want exactly one consumer name", sub)}
		}
		state := control.Stopped
		if sub == "start" {
			state = control.Running
		}
		if err := insp.SetConsumerState(ctx, pos[0], *process, state); err != nil {
			return err
		}
		where := "every process"
		if *process != "" {
			where = "process " + *process
			if ps, err := insp.Processes(ctx); err == nil {
				for _, p := range ps {
					if p.ID == *process && p.Gone {
						fmt.Fprintf(stdout, "consumer %s set to %s in process %s, which is gone (last seen %s): it applies the state when it returns\n",
							pos[0], state, *process, since(p.LastSeen))
						return nil
					}
				}
			}
		}
		fmt.Fprintf(stdout, "consumer %s set to %s in %s; live processes apply it within one heartbeat\n", pos[0], state, where)
		return nil
	}
	return usageError{fmt.Sprintf("consumers: unknown subcommand %q (accepted: list, stop, start)", sub)}
}

// runEventAction runs retry, replay or redrive on one event, or on every event that
// matches the filter flags.
func runEventAction(ctx context.Context, kind control.CommandKind, args []string, stdout, stderr io.Writer) error {
	usage := fmt.Sprintf("events %s ID [--wait] | events %s [filters] [--yes]", kind, kind)
	if kind == control.Retry {
		usage = "events retry ID [--consumer NAME] [--wait] | events retry [filters] [--yes]"
	}
	fs := newFlagSet("events "+string(kind), usage, stderr)
	configPath := configFlag(fs)
	var ff filterFlags
	ff.register(fs)
	consumer := ""
	if kind == control.Retry {
		fs.StringVar(&consumer, "consumer", "", "the consumer to run (default: the event's own)")
	}
	wait := fs.Bool("wait", false, "wait for the outcome and print it")
	timeout := fs.Duration("timeout", 30*time.Second, "how long --wait waits")
	yes := fs.Bool("yes", false, "bulk: do not ask for confirmation")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	f, err := ff.filter()
	if err != nil {
		return err
	}
	bulk := len(pos) == 0
	if len(pos) > 1 || (bulk && ff == (filterFlags{})) {
		return usageError{fmt.Sprintf("events %s: want one event ID, or filter flags to act on every matching event", kind)}
	}
	insp, closeFn, err := openInspector(ctx, *configPath)
	if err != nil {
		return err
	}
	defer closeFn()
	if bulk {
		return runBulk(ctx, insp, kind, f, *yes, *asJSON, stdout)
	}
	var out control.Outcome
	switch kind {
	case control.Retry:
		out, err = insp.Retry(ctx, pos[0], consumer)
	case control.Replay:
		out, err = insp.Replay(ctx, pos[0])
	case control.Redrive:
		out, err = insp.Redrive(ctx, pos[0])
	}
	if err != nil {
		return err
	}
	cmd := *out.Command
	if *wait {
		wctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		cmd, err = insp.WaitCommand(wctx, cmd.ID)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
	if *asJSON {
		return printJSON(stdout, cmd)
	}
	switch cmd.Status {
	case control.CommandPending, control.CommandClaimed:
		fmt.Fprintf(stdout, "command %s: %s %s %s; a live bus process will run it (eventbus commands show %s)\n", cmd.ID, cmd.Status, kind, cmd.EventID, cmd.ID)
		if *wait {
			return fmt.Errorf("command %s still %s after %v: is a bus process running%s?", cmd.ID, cmd.Status, *timeout, consumerHint(cmd))
		}
	case control.CommandSucceeded:
		fmt.Fprintf(stdout, "command %s: %s %s succeeded by process %s", cmd.ID, kind, cmd.EventID, cmd.ClaimedBy)
		if cmd.Result != "" {
			fmt.Fprintf(stdout, "; new event %s", cmd.Result)
		}
		fmt.Fprintln(stdout)
	default:
		return fmt.Errorf("command %s: %s %s %s: %s", cmd.ID, kind, cmd.EventID, cmd.Status, cmd.Error)
	}
	return nil
}

func consumerHint(c control.Command) string {
	if c.Consumer != "" {
		return fmt.Sprintf(" with consumer %q", c.Consumer)
	}
	return ""
}

func runBulk(ctx context.Context, insp *control.Inspector, kind control.CommandKind, f modelevent.Filter, yes, asJSON bool, stdout io.Writer) error {
	n, err := insp.Count(ctx, f)
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(stdout, "no events match")
		return nil
	}
	if !yes {
		fmt.Fprintf(stdout, "%d events match. %s them all? [y/N] ", n, strings.ToUpper(string(kind[:1]))+string(kind[1:]))
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintln(stdout, "nothing done")
			return nil
		}
	}
	res, err := insp.Bulk(ctx, kind, f)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "%d matched: %d commands enqueued, %d done, %d refused\n", res.Matched, res.Enqueued, res.Done, res.Failed)
	for _, e := range res.Errors {
		fmt.Fprintln(stdout, "  refused:", e)
	}
	return nil
}

func runCommands(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub := "list"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs := newFlagSet("commands "+sub, "commands [list [--status S] | show ID] [--config FILE] [--json]", stderr)
	configPath := configFlag(fs)
	status := fs.String("status", "", "only commands in this status (pending, claimed, succeeded, failed, expired)")
	limit := fs.Int("limit", 50, "at most this many")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return err
	}
	insp, closeFn, err := openInspector(ctx, *configPath)
	if err != nil {
		return err
	}
	defer closeFn()
	var cmds []control.Command
	switch sub {
	case "list":
		cmds, err = insp.Commands(ctx, control.CommandStatus(*status), *limit)
	case "show":
		if len(pos) != 1 {
			return usageError{"commands show: want exactly one command ID"}
		}
		var c control.Command
		c, err = insp.Command(ctx, pos[0])
		cmds = []control.Command{c}
	default:
		return usageError{fmt.Sprintf("commands: unknown subcommand %q (accepted: list, show)", sub)}
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, cmds)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMMAND\tKIND\tEVENT\tCONSUMER\tSTATUS\tBY\tCREATED\tRESULT\tERROR")
	for _, c := range cmds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Kind, c.EventID, dash(c.Consumer), c.Status, dash(c.ClaimedBy),
			c.CreatedAt.Local().Format("15:04:05"), dash(c.Result), dash(oneLine(c.Error, 60)))
	}
	return tw.Flush()
}
