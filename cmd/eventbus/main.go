// Command eventbus runs and inspects eventbus: a demo on the embedded default, the
// store's migrations, the recorded events and, later, the console.
//
// Usage:
//
//	eventbus demo [--rate N] [--for D] [--db PATH] [--addr HOST:PORT] [--config FILE]
//	eventbus serve [--addr HOST:PORT] [--read-only] [--config FILE]
//	eventbus migrate [--config FILE] [--status]
//	eventbus events list [filters] [--json]
//	eventbus events show ID [--json]
//	eventbus events retry|replay|redrive ID [--wait] | [filters] [--yes]
//	eventbus events delete ID [--yes]
//	eventbus events prune --older-than D [--status S] [--dry-run]
//	eventbus processes
//	eventbus consumers list | stop NAME | start NAME [--process ID]
//	eventbus commands [list | show ID]
//	eventbus retrying [--json] | --retry-now ID | --cancel ID
//	eventbus scheduled [--json] | --at TIME ID | --cancel ID
//	eventbus completion bash|zsh|fish
//	eventbus version
//	eventbus bench [--events N | --steps N,M] [--publishers P] [--modes durable,buffered] [--config FILE]
//
// Every command reads --config FILE (YAML or JSON; EVENTBUS_CONFIG names it too) with
// EVENTBUS_* environment overrides, or runs on the embedded default (memory backend,
// SQLite file eventbus.db) without one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"

	_ "github.com/go-eventbus/eventbus/backends/all"   // every backend, chosen by config
	_ "github.com/go-eventbus/eventbus/modelevent/all" // every store driver, chosen by config
	_ "github.com/go-eventbus/eventbus/outbox"         // outbox.enabled runs the relay
)

// version is set at build time with -ldflags "-X main.version=…"; left at "dev", the
// module version and VCS revision of the build info are printed instead.
var version = "dev"

// versionString is the version line of eventbus version: the -X version, else the
// main module's version from the build info (go install …@v1.2.3 records it), with
// the VCS revision and the Go version.
func versionString() string {
	v := version
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "eventbus " + v
	}
	if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	var rev, when string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	extra := []string{bi.GoVersion}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if modified {
			rev += "+modified"
		}
		extra = append(extra, "revision "+rev)
	}
	if when != "" {
		extra = append(extra, when)
	}
	return "eventbus " + v + " (" + strings.Join(extra, ", ") + ")"
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"demo", "run a bus with sample consumers and a steady stream of events", runDemo},
		{"serve", "serve the console (/events/) over the configured store", runServe},
		{"migrate", "apply the store's schema migrations", runMigrate},
		{"events", "list, show, retry, replay and redrive recorded events (ModelEvents)", runEvents},
		{"processes", "list the bus processes registered in the store", runProcesses},
		{"consumers", "list consumers across processes; stop or start one everywhere", runConsumers},
		{"commands", "list or show the commands sent to bus processes", runCommands},
		{"retrying", "list scheduled retries; retry one now or cancel it", runRetrying}, // scheduled.go
		{"scheduled", "list delayed publishes; cancel or reschedule one", runScheduled}, // scheduled.go
		{"bench", "measure publish→handled events/s: raw Watermill vs the bus with recording", runBench},
		{"completion", "print a shell completion script (bash, zsh, fish)", runCompletion},
		{"version", "print the version", func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			_, err := fmt.Fprintln(stdout, versionString())
			return err
		}},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		var u usageError
		fmt.Fprintln(os.Stderr, "eventbus:", err)
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		if len(args) == 0 {
			return usageError{"missing command"}
		}
		return nil
	}
	if args[0] == "__complete" { // the completion scripts' helper, not listed
		return runComplete(ctx, args[1:], stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	sort.Strings(names)
	return usageError{fmt.Sprintf("unknown command %q (commands: %s; see eventbus --help)", args[0], strings.Join(names, ", "))}
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "eventbus — a publish-subscribe event bus with an audit trail and a console.")
	fmt.Fprintln(w, "\nUsage: eventbus <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'eventbus <command> --help' for a command's flags.")
	fmt.Fprintln(w, "Without --config the embedded default runs: memory backend, SQLite file eventbus.db.")
}

// newFlagSet returns a flag set that reports errors instead of exiting; its usage
// (--help) goes to stdout, where a pager or grep can read it.
func newFlagSet(name, usage string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: eventbus %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, turning flag errors into usage errors (printed by main on
// stderr, with no usage dump) and --help into the usage on the flag set's output.
// Flags may follow positional arguments (eventbus events show ID --json).
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	defer func() { fs.SetOutput(out); fs.Usage = usage }()
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(out)
				usage()
				return nil, err
			}
			return nil, usageError{fmt.Sprintf("%s: %v (see eventbus %s --help)", fs.Name(), err, fs.Name())}
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}
