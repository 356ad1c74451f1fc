package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

const benchUsage = "bench [--events N | --steps N,N,...] [--publishers P] [--payload BYTES] [--modes durable,buffered] [--use-config-store] [--json] [--config FILE]"

// benchTopic is the topic of the store ceiling's rows; the bus runs use
// benchTopic + "." + a random suffix. Rows of these topics are deleted from the
// config's store after each run.
const benchTopic = "eventbus.bench"

// benchHandler is the consumer name of the bus runs and of the ceiling's consumed rows.
const benchHandler = "bench"

// benchResultPrefix starts the line in which a child process reports its run.
const benchResultPrefix = "eventbus-bench-result"

// benchExecutable is the eventbus binary the runs are started from (a test sets it).
var benchExecutable = os.Executable

// The runs of a step, as --run names them.
const (
	benchRunRaw     = "raw"
	benchRunCeiling = "ceiling"
)

// benchRunName is the table name of a run.
func benchRunName(run string) string {
	switch run {
	case benchRunRaw:
		return "raw watermill"
	case benchRunCeiling:
		return "store ceiling"
	}
	return "bus " + run
}

// benchOptions is a parsed bench command line.
type benchOptions struct {
	configPath  string
	steps       []int
	publishers  int
	payload     []byte
	modes       []middleware.RecordMode
	configStore bool // record into the config's store, not a fresh SQLite file per run
	batchRows   int  // rows per Write in the ceiling run: the recorder's batch size
}

// benchResult is one line of the table.
type benchResult struct {
	events  int
	run     string  // raw, durable, buffered or ceiling
	perSec  float64 // events/s
	peakRSS int64   // bytes; 0 when unknown
}

// rows reports whether the run stores rows (2 per event).
func (r benchResult) rows() bool { return r.run != benchRunRaw }

// runBench measures publish→handled throughput on the configured backend: bare
// Watermill (the backend's publisher and subscriber with a plain router handler) and
// the bus with recording, in each record mode, then the store's own ceiling (the same
// rows written straight through Store.Write), at each size of --steps. Every run is a
// process of its own (the command started again with --run), so that its peak RSS is
// its own and no run inherits the heap or goroutines of another. Each line has its
// ratios to raw Watermill and to the ceiling of the same step.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", benchUsage, stdout)
	configPath := configFlag(fs)
	events := fs.Int("events", 20000, "events per run")
	steps := fs.String("steps", "", "comma-separated event counts, e.g. 20000,200000: every run at each size (instead of --events)")
	publishers := fs.Int("publishers", 16, "goroutines publishing concurrently")
	payloadSize := fs.Int("payload", 100, "payload bytes")
	modes := fs.String("modes", "durable,buffered", "record modes of the bus runs, comma-separated")
	configStore := fs.Bool("use-config-store", false, "record into the config's store instead of a fresh SQLite file per run (the bench's rows are deleted afterwards)")
	asJSON := fs.Bool("json", false, "print the results as JSON (no table)")
	runOne := fs.String("run", "", "internal: make one run (raw, durable, buffered or ceiling) with --events in this process and print its result")
	positional, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(positional) > 0 {
		return usageError{fmt.Sprintf("bench: unexpected argument %q (usage: eventbus %s)", positional[0], benchUsage)}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	opts := benchOptions{configPath: *configPath, publishers: *publishers, configStore: *configStore}
	switch {
	case set["steps"] && set["events"]:
		return usageError{"bench: --steps: give --steps or --events, not both"}
	case set["steps"]:
		if opts.steps, err = parseSteps(*steps); err != nil {
			return usageError{"bench: --steps: " + err.Error()}
		}
	case *events < 1:
		return usageError{fmt.Sprintf("bench: --events: must be ≥ 1, got %d", *events)}
	default:
		opts.steps = []int{*events}
	}
	if *publishers < 1 {
		return usageError{fmt.Sprintf("bench: --publishers: must be ≥ 1, got %d", *publishers)}
	}
	if *payloadSize < 0 {
		return usageError{fmt.Sprintf("bench: --payload: must be ≥ 0, got %d", *payloadSize)}
	}
	if opts.modes, err = parseModes(*modes); err != nil {
		return usageError{"bench: --modes: " + err.Error()}
	}
	switch middleware.RecordMode(*runOne) {
	case "", benchRunRaw, benchRunCeiling, middleware.RecordDurable, middleware.RecordBuffered:
	default:
		return usageError{fmt.Sprintf("bench: --run: %q is not a run (accepted: raw, durable, buffered, ceiling)", *runOne)}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if cfg.Backend == "" {
		cfg.Backend = bus.DefaultBackend
	}
	maxPayload := cfg.MaxPayloadBytes
	if maxPayload <= 0 {
		maxPayload = bus.DefaultMaxPayloadBytes
	}
	if *payloadSize > maxPayload {
		return usageError{fmt.Sprintf("bench: --payload: %d bytes is over max_payload_bytes %d", *payloadSize, maxPayload)}
	}
	opts.payload = make([]byte, *payloadSize)
	for i := range opts.payload {
		opts.payload[i] = 'a' + byte(i%26)
	}
	opts.batchRows = cfg.Record.BatchSize
	if opts.batchRows <= 0 {
		opts.batchRows = 256
	}
	if *runOne != "" {
		rate, err := benchRunHere(ctx, cfg, opts, *runOne, opts.steps[0])
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s %g %d\n", benchResultPrefix, rate, readPeakRSS())
		return err
	}
	exe, err := benchExecutable()
	if err != nil {
		return fmt.Errorf("bench: the eventbus binary to run: %w", err)
	}

	jsonOut := stdout
	if *asJSON {
		stdout = io.Discard // the table; the JSON goes to jsonOut at the end
	}
	storeName := "sqlite (a fresh file per run)"
	if opts.configStore {
		storeName = cfg.Store.Driver + " (the config's store)"
	}
	host, _ := os.Hostname()
	fmt.Fprintf(stdout, "eventbus bench: backend %s, store %s, events %s, %d publishers, %d-byte payload, %d CPUs, %s (%s)\n",
		cfg.Backend, storeName, joinInts(opts.steps), opts.publishers, len(opts.payload), runtime.NumCPU(), runtime.Version(), host)
	fmt.Fprintf(stdout, "%8s  %-14s %10s %10s %7s %11s %9s\n", "events", "run", "events/s", "rows/s", "of raw", "of ceiling", "peak RSS")
	runs := []string{benchRunRaw}
	for _, m := range opts.modes {
		runs = append(runs, string(m))
	}
	runs = append(runs, benchRunCeiling)
	var all []benchResult
	for _, n := range opts.steps {
		var results []benchResult
		for _, run := range runs {
			stopProgress := benchProgress(stderr, run, n)
			r, err := benchChild(ctx, exe, opts, run, n, stderr)
			stopProgress()
			if err != nil {
				printBenchStep(stdout, results)
				return fmt.Errorf("bench %s, %d events: %w", benchRunName(run), n, err)
			}
			results = append(results, r)
		}
		printBenchStep(stdout, results)
		all = append(all, results...)
	}
	printSteadiness(stdout, opts.steps, all)
	fmt.Fprintf(stdout, "rows/s: ModelEvent rows stored per second (2 per event); of ceiling: rows/s ÷ the ceiling's rows/s; ceiling: the same rows\n")
	fmt.Fprintf(stdout, "through Store.Write in batches of %d, no broker; peak RSS: VmHWM of the run's own process (each run is one)\n", opts.batchRows)
	if *asJSON {
		return printJSON(jsonOut, benchJSON(cfg.Backend, all))
	}
	return nil
}

// benchJSONLine is one result of bench --json.
type benchJSONLine struct {
	Backend      string  `json:"backend"`
	Events       int     `json:"events"`
	Run          string  `json:"run"`
	EventsPerSec float64 `json:"events_per_sec"`
	RowsPerSec   float64 `json:"rows_per_sec,omitempty"`
	PeakRSS      int64   `json:"peak_rss_bytes,omitempty"`
}

func benchJSON(backend string, all []benchResult) []benchJSONLine {
	out := []benchJSONLine{}
	for _, r := range all {
		l := benchJSONLine{Backend: backend, Events: r.events, Run: r.run, EventsPerSec: r.perSec, PeakRSS: r.peakRSS}
		if r.rows() {
			l.RowsPerSec = 2 * r.perSec
		}
		out = append(out, l)
	}
	return out
}

// benchChild makes one run with n events in a child process (eventbus bench --run) and
// returns its result; the child's errors go to stderr.
func benchChild(ctx context.Context, exe string, opts benchOptions, run string, n int, stderr io.Writer) (benchResult, error) {
	args := []string{"bench", "--run", run, "--events", strconv.Itoa(n), "--config", opts.configPath,
		"--publishers", strconv.Itoa(opts.publishers), "--payload", strconv.Itoa(len(opts.payload)),
		"--use-config-store=" + strconv.FormatBool(opts.configStore)}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) } // the child cleans up
	cmd.WaitDelay = time.Minute
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		return benchResult{}, fmt.Errorf("%s %s: %w", exe, strings.Join(args, " "), err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != benchResultPrefix {
			continue
		}
		rate, err1 := strconv.ParseFloat(f[1], 64)
		rss, err2 := strconv.ParseInt(f[2], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return benchResult{}, fmt.Errorf("result line %q: %w", line, err)
		}
		return benchResult{events: n, run: run, perSec: rate, peakRSS: rss}, nil
	}
	return benchResult{}, fmt.Errorf("%s %s printed no result: %q", exe, strings.Join(args, " "), out)
}

// benchRunHere makes one run with n events in this process and returns its events/s.
func benchRunHere(ctx context.Context, cfg bus.Config, opts benchOptions, run string, n int) (float64, error) {
	switch run {
	case benchRunRaw:
		return benchRaw(ctx, cfg, n, opts.publishers, opts.payload)
	case benchRunCeiling:
		sc, cleanup, err := benchStore(ctx, cfg, opts.configStore)
		if err != nil {
			return 0, err
		}
		rate, err := benchCeiling(ctx, cfg, sc, n, opts.payload, opts.batchRows)
		return rate, errors.Join(err, cleanup(benchTopic))
	}
	c := cfg
	c.Record.Mode = middleware.RecordMode(run)
	c.Process.Disabled = true
	topic := benchTopic + "." + watermill.NewShortUUID()
	sc, cleanup, err := benchStore(ctx, cfg, opts.configStore)
	if err != nil {
		return 0, err
	}
	c.Store = sc
	rate, err := benchBus(ctx, c, topic, n, opts.publishers, opts.payload)
	return rate, errors.Join(err, cleanup(topic))
}

// benchStore returns the store of one run and a cleanup to call after it: a fresh
// SQLite file (the cleanup removes it), or the config's store (the cleanup deletes the
// rows of the given topics).
func benchStore(ctx context.Context, cfg bus.Config, configStore bool) (bus.StoreConfig, func(topics ...string) error, error) {
	if configStore {
		return cfg.Store, func(topics ...string) error {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
			defer cancel()
			s, err := openStore(ctx, cfg)
			if err != nil {
				return fmt.Errorf("delete the bench's rows: %w", err)
			}
			defer s.Close()
			return deleteTopics(ctx, s, topics...)
		}, nil
	}
	dir, err := os.MkdirTemp("", "eventbus-bench")
	if err != nil {
		return bus.StoreConfig{}, nil, err
	}
	sc := bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(dir, "bench.db")}
	return sc, func(...string) error { return os.RemoveAll(dir) }, nil
}

// deleteTopics deletes the ModelEvents of topics and their attempts.
func deleteTopics(ctx context.Context, s *modelevent.SQLStore, topics ...string) error {
	ph := "?"
	if s.Dialect() == modelevent.DialectPostgres {
		ph = "$1"
	}
	for _, topic := range topics {
		if _, err := s.DB().ExecContext(ctx, `DELETE FROM eventbus_attempts WHERE (message_uuid, direction, handler) IN
			(SELECT message_uuid, direction, handler FROM eventbus_events WHERE topic = `+ph+`)`, topic); err != nil {
			return fmt.Errorf("delete the attempts of topic %q: %w", topic, err)
		}
		if _, err := s.DB().ExecContext(ctx, `DELETE FROM eventbus_events WHERE topic = `+ph, topic); err != nil {
			return fmt.Errorf("delete the events of topic %q: %w", topic, err)
		}
	}
	return nil
}

// benchCeiling writes the rows n bus events make (a produced and a consumed row each,
// one clean attempt in each, as the recorder builds them) straight into the store
// through Store.Write, batchRows rows per call, and returns the events/s.
func benchCeiling(ctx context.Context, cfg bus.Config, sc bus.StoreConfig, n int, payload []byte, batchRows int) (float64, error) {
	c := cfg
	c.Store = sc
	s, err := openStore(ctx, c)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	perBatch := max(batchRows/2, 1) // events per Write
	batch := make([]modelevent.Change, 0, 2*perBatch)
	start := time.Now()
	for done := 0; done < n; {
		batch = batch[:0]
		for i := 0; i < perBatch && done < n; i++ {
			batch = append(batch, benchChanges(cfg.Backend, payload)...)
			done++
		}
		if err := s.Write(ctx, batch); err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// benchChanges returns the two rows the bus records for one event of the bench: the
// produced row and the consumed row of benchHandler, each with one clean attempt.
func benchChanges(backend string, payload []byte) []modelevent.Change {
	id := bus.NewUUID()
	now := time.Now()
	meta := map[string]string{modelevent.MetadataCorrelationID: id}
	att := []modelevent.Attempt{{StartedAt: now, Duration: 40 * time.Microsecond}}
	ev := modelevent.ModelEvent{MessageUUID: id, Direction: modelevent.Produced, Topic: benchTopic, Backend: backend,
		Payload: payload, Metadata: meta, Status: modelevent.StatusPublished, Attempts: 1, CorrelationID: id,
		CreatedAt: now, UpdatedAt: now}
	consumed := ev
	consumed.Direction, consumed.Handler, consumed.Status = modelevent.Consumed, benchHandler, modelevent.StatusSucceeded
	return []modelevent.Change{{Event: ev, NewAttempts: att}, {Event: consumed, NewAttempts: att}}
}

// printBenchStep prints the lines of one step, with their ratios to the step's raw
// Watermill and store ceiling runs.
func printBenchStep(w io.Writer, results []benchResult) {
	var raw, ceiling float64
	for _, r := range results {
		switch r.run {
		case benchRunRaw:
			raw = r.perSec
		case benchRunCeiling:
			ceiling = r.perSec
		}
	}
	for _, r := range results {
		rows, ofRaw, ofCeiling := "-", "-", "-"
		if r.rows() {
			rows = fmt.Sprintf("%.0f", 2*r.perSec)
			if ceiling > 0 {
				ofCeiling = fmt.Sprintf("%.2f", r.perSec/ceiling)
			}
		}
		if raw > 0 {
			ofRaw = fmt.Sprintf("%.2f", r.perSec/raw)
		}
		fmt.Fprintf(w, "%8d  %-14s %10.0f %10s %7s %11s %9s\n", r.events, benchRunName(r.run), r.perSec, rows, ofRaw, ofCeiling, formatRSS(r.peakRSS))
	}
}

// printSteadiness prints, for more than one step, each run's events/s and peak RSS at
// the largest step as a multiple of those at the smallest: 1.00 is flat.
func printSteadiness(w io.Writer, steps []int, results []benchResult) {
	if len(steps) < 2 {
		return
	}
	first, last := steps[0], steps[len(steps)-1]
	fmt.Fprintf(w, "from %d to %d events (1.00 = flat):", first, last)
	for _, r := range results {
		if r.events != first {
			continue
		}
		for _, l := range results {
			if l.events != last || l.run != r.run {
				continue
			}
			rss := "-"
			if r.peakRSS > 0 && l.peakRSS > 0 {
				rss = fmt.Sprintf("%.2f", float64(l.peakRSS)/float64(r.peakRSS))
			}
			fmt.Fprintf(w, "\n  %-14s events/s ×%.2f, peak RSS ×%s", benchRunName(r.run), l.perSec/r.perSec, rss)
		}
	}
	fmt.Fprintln(w)
}

// parseSteps parses a comma-separated list of event counts.
func parseSteps(s string) ([]int, error) {
	var steps []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		if n < 1 {
			return nil, fmt.Errorf("%d: must be ≥ 1", n)
		}
		steps = append(steps, n)
	}
	return steps, nil
}

// parseModes parses a comma-separated list of record modes.
func parseModes(s string) ([]middleware.RecordMode, error) {
	var modes []middleware.RecordMode
	for _, f := range strings.Split(s, ",") {
		m := middleware.RecordMode(strings.TrimSpace(f))
		if m != middleware.RecordDurable && m != middleware.RecordBuffered {
			return nil, fmt.Errorf("%q is not a record mode (accepted: %s, %s)", m, middleware.RecordDurable, middleware.RecordBuffered)
		}
		modes = append(modes, m)
	}
	return modes, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// readPeakRSS returns the process's peak resident set size in bytes (VmHWM in
// /proc/self/status), or 0 where there is none.
func readPeakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

func formatRSS(b int64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// publishConcurrently publishes n messages from p goroutines.
func publishConcurrently(n, p int, payload []byte, publish func(*message.Message) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, p)
	for i := 0; i < p; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := publish(bus.NewMessage(payload)); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

func waitHandled(ctx context.Context, handled *atomic.Int64, n int) error {
	deadline := time.Now().Add(10 * time.Minute)
	for handled.Load() < int64(n) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("handled %d of %d", handled.Load(), n)
		}
		time.Sleep(200 * time.Microsecond)
	}
	return nil
}

func benchRaw(ctx context.Context, cfg bus.Config, n, p int, payload []byte) (float64, error) {
	backend, err := bus.OpenBackend(ctx, cfg.Backend, cfg.BackendSettings, bus.BackendOptions{})
	if err != nil {
		return 0, err
	}
	defer backend.Close()
	sub, err := backend.Subscriber("bench-raw")
	if err != nil {
		return 0, err
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		return 0, err
	}
	topic := benchTopic + ".raw." + watermill.NewShortUUID()
	var handled atomic.Int64
	router.AddConsumerHandler("bench-raw", topic, sub, func(*message.Message) error { handled.Add(1); return nil })
	go func() { _ = router.Run(ctx) }()
	<-router.Running()
	defer router.Close()
	start := time.Now()
	if err := publishConcurrently(n, p, payload, func(m *message.Message) error { return backend.Publisher().Publish(topic, m) }); err != nil {
		return 0, err
	}
	if err := waitHandled(ctx, &handled, n); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func benchBus(ctx context.Context, cfg bus.Config, topic string, n, p int, payload []byte) (float64, error) {
	b, err := bus.New(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	var handled atomic.Int64
	if err := b.Handle(benchHandler, topic, func(context.Context, *message.Message) error { handled.Add(1); return nil }); err != nil {
		return 0, err
	}
	go func() { _ = b.Run(ctx) }()
	<-b.Running()
	start := time.Now()
	if err := publishConcurrently(n, p, payload, func(m *message.Message) error { return b.Publish(ctx, topic, m) }); err != nil {
		return 0, err
	}
	if err := waitHandled(ctx, &handled, n); err != nil {
		return 0, err
	}
	if err := b.Close(); err != nil { // every row flushed counts
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// benchProgress draws, on a terminal, which run is going and for how long, until the
// returned function is called.
func benchProgress(w io.Writer, run string, n int) func() {
	p := newProgress(w)
	if !p.tty {
		return func() {}
	}
	start := time.Now()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			p.draw(fmt.Sprintf("bench: %s with %d events… %s", benchRunName(run), n, time.Since(start).Round(100*time.Millisecond)), true)
			select {
			case <-done:
				p.clear()
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}
