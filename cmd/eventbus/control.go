package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/internal/jsonfmt"
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
	store, err := openExistingStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	insp := control.NewInspector(store, control.NewStore(store), control.InspectorOptions{})
	return insp, func() { store.Close() }, nil
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
	fs := newFlagSet("processes", "processes [--config FILE] [--json]", stdout)
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
		return printJSON(stdout, jsonfmt.List(ps))
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
			cs = append(cs, c.Name+"="+string(c.State))
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
	fs := newFlagSet("consumers "+sub, "consumers "+sub+" [NAME] [--process ID] [--config FILE]", stdout)
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
			return printJSON(stdout, jsonfmt.List(cs))
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
	usage := fmt.Sprintf("events %s ID [--wait] | events %s [filters] [--yes] [--wait]", kind, kind)
	if kind == control.Retry {
		usage = "events retry ID [--consumer NAME] [--wait] | events retry [filters] [--yes] [--wait]"
	}
	fs := newFlagSet("events "+string(kind), usage, stdout)
	configPath := configFlag(fs)
	var ff filterFlags
	ff.register(fs)
	consumer := ""
	if kind == control.Retry {
		fs.StringVar(&consumer, "consumer", "", "the consumer to run (default: the event's own)")
	}
	wait := fs.Bool("wait", false, "wait for the outcome (of every command, in bulk: a progress bar on a terminal, then a summary)")
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
		return runBulk(ctx, insp, kind, f, bulkOptions{yes: *yes, json: *asJSON, wait: *wait, timeout: *timeout}, stdout, stderr)
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

// bulkOptions are the flags of a bulk action.
type bulkOptions struct {
	yes, json, wait bool
	timeout         time.Duration
}

// bulkWaitResult is the outcome of the commands of a bulk action after --wait.
type bulkWaitResult struct {
	control.BulkResult
	// Succeeded, FailedCommands and Pending count the enqueued commands by outcome;
	// Pending are those still pending or claimed when the wait ended.
	Succeeded      int      `json:"succeeded"`
	FailedCommands int      `json:"failed_commands"`
	Pending        int      `json:"pending"`
	CommandErrors  []string `json:"command_errors"`
}

func runBulk(ctx context.Context, insp *control.Inspector, kind control.CommandKind, f modelevent.Filter, o bulkOptions, stdout, stderr io.Writer) error {
	n, err := insp.Count(ctx, f)
	if err != nil {
		return err
	}
	if n == 0 {
		if o.json {
			return printJSON(stdout, control.BulkResult{})
		}
		fmt.Fprintln(stdout, "no events match")
		return nil
	}
	what := fmt.Sprintf("%d events match", n)
	if kind == control.Replay {
		ids, _, _, err := insp.BulkTargets(ctx, kind, f, 0)
		if err != nil {
			return err
		}
		what = fmt.Sprintf("%d messages (%d rows) match", len(ids), n)
	}
	if !o.yes {
		fmt.Fprintf(stdout, "%s. %s them all? [y/N] ", what, strings.ToUpper(string(kind[:1]))+string(kind[1:]))
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
	if !o.wait {
		if o.json {
			return printJSON(stdout, res)
		}
		fmt.Fprintf(stdout, "%d matched: %d commands enqueued, %d done, %d refused; a live bus process runs them (eventbus commands, or --wait)\n", res.Matched, res.Enqueued, res.Done, res.Failed)
		for _, e := range res.Errors {
			fmt.Fprintln(stdout, "  refused:", e)
		}
		return nil
	}
	wr, err := waitCommands(ctx, insp, res, o.timeout, newProgress(stderr))
	if err != nil {
		return err
	}
	if o.json {
		if err := printJSON(stdout, wr); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "%d matched: %d succeeded, %d failed, %d still pending after %v; %d refused\n",
			res.Matched, wr.Succeeded, wr.FailedCommands, wr.Pending, o.timeout, res.Failed)
		for _, e := range res.Errors {
			fmt.Fprintln(stdout, "  refused:", e)
		}
		for _, e := range wr.CommandErrors {
			fmt.Fprintln(stdout, "  failed:", e)
		}
	}
	switch {
	case wr.Pending > 0:
		return fmt.Errorf("%d of %d commands still pending after %v: is a bus process running the consumers? (eventbus processes)", wr.Pending, res.Enqueued, o.timeout)
	case wr.FailedCommands > 0 || res.Failed > 0:
		return fmt.Errorf("%d of %d actions failed", wr.FailedCommands+res.Failed, res.Matched)
	}
	return nil
}

// waitCommands polls the commands of res until each is done or timeout passes,
// drawing a progress bar.
func waitCommands(ctx context.Context, insp *control.Inspector, res control.BulkResult, timeout time.Duration, p *progress) (bulkWaitResult, error) {
	wr := bulkWaitResult{BulkResult: res}
	pending := append([]string(nil), res.Commands...)
	total := len(pending)
	deadline := time.Now().Add(timeout)
	defer p.clear()
	for {
		still := pending[:0]
		for _, id := range pending {
			c, err := insp.Command(ctx, id)
			if err != nil {
				return wr, err
			}
			switch {
			case c.Status == control.CommandSucceeded:
				wr.Succeeded++
			case c.Status.Done():
				wr.FailedCommands++
				if len(wr.CommandErrors) < 10 {
					wr.CommandErrors = append(wr.CommandErrors, fmt.Sprintf("command %s (%s %s): %s: %s", c.ID, c.Kind, c.EventID, c.Status, c.Error))
				}
			default:
				still = append(still, id)
			}
		}
		pending = still
		done := total - len(pending)
		p.bar(done, total, fmt.Sprintf("commands done (%d failed)", wr.FailedCommands), len(pending) == 0)
		if len(pending) == 0 {
			return wr, nil
		}
		if time.Now().After(deadline) {
			wr.Pending = len(pending)
			return wr, nil
		}
		select {
		case <-ctx.Done():
			wr.Pending = len(pending)
			return wr, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func runCommands(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub := "list"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs := newFlagSet("commands "+sub, "commands [list [--status S] | show ID] [--config FILE] [--json]", stdout)
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
		if sub == "show" {
			return printJSON(stdout, cmds[0])
		}
		return printJSON(stdout, jsonfmt.List(cmds))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMMAND\tKIND\tEVENT\tCONSUMER\tSTATUS\tBY\tCREATED\tRESULT\tERROR")
	for _, c := range cmds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Kind, c.EventID, dash(c.Consumer), c.Status, dash(c.ClaimedBy),
			c.CreatedAt.Local().Format("15:04:05"), dash(c.Result), dash(oneLine(c.Error, 60)))
	}
	return tw.Flush()
}
