package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/internal/jsonfmt"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/modelevent"
)

// runBenchCmd runs `eventbus bench args...` on the embedded default config (memory
// backend) and returns its output. The runs are child processes of the binary that
// TestMain built.
func runBenchCmd(t *testing.T, args ...string) string {
	t.Helper()
	t.Setenv("EVENTBUS_CONFIG", "")
	benchExecutable = func() (string, error) { return binary, nil }
	var out bytes.Buffer
	if err := run(context.Background(), append([]string{"bench"}, args...), &out, io.Discard); err != nil {
		t.Fatalf("bench %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

// benchLine returns the fields of the table line of run name at events, failing the
// test when there is none or its numbers do not parse.
func benchLine(t *testing.T, out string, events int, name string) []string {
	t.Helper()
	prefix := strconv.Itoa(events) + "  " + name + " "
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(strings.TrimLeft(line, " "), prefix) {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(strings.TrimLeft(line, " "), prefix))
		if len(f) < 5 {
			t.Fatalf("line %q: want events/s, rows/s, of raw, of ceiling, peak RSS", line)
		}
		if v, err := strconv.ParseFloat(f[0], 64); err != nil || v <= 0 {
			t.Errorf("line %q: events/s %q is not a positive number", line, f[0])
		}
		return f
	}
	t.Fatalf("no line for %d events, %s in:\n%s", events, name, out)
	return nil
}

func TestBenchNamesEveryLine(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the runs make their fresh SQLite files
	out := runBenchCmd(t, "--events", "200")
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("the runs left %d entries in TMPDIR, e.g. %s", len(left), left[0].Name())
	}
	header := strings.SplitN(out, "\n", 2)[0]
	for _, want := range []string{"backend memory", "store sqlite", "events 200,", "16 publishers", "100-byte payload",
		strconv.Itoa(runtime.NumCPU()) + " CPUs", runtime.Version()} {
		if !strings.Contains(header, want) {
			t.Errorf("header %q does not name %q", header, want)
		}
	}
	for _, col := range []string{"events", "run", "events/s", "rows/s", "of raw", "of ceiling", "peak RSS"} {
		if !strings.Contains(out, col) {
			t.Errorf("no column %q in:\n%s", col, out)
		}
	}
	raw := benchLine(t, out, 200, "raw watermill")
	if raw[1] != "-" || raw[2] != "1.00" || raw[3] != "-" {
		t.Errorf("raw line %v: want rows/s -, of raw 1.00, of ceiling -", raw)
	}
	for _, name := range []string{"bus durable", "bus buffered", "store ceiling"} {
		f := benchLine(t, out, 200, name)
		for i, col := range []string{"rows/s", "of raw", "of ceiling"} {
			if v, err := strconv.ParseFloat(f[i+1], 64); err != nil || v <= 0 {
				t.Errorf("%s: %s %q is not a positive number", name, col, f[i+1])
			}
		}
	}
	if f := benchLine(t, out, 200, "store ceiling"); f[3] != "1.00" {
		t.Errorf("ceiling of ceiling = %s, want 1.00", f[3])
	}
	for _, name := range []string{"raw watermill", "bus durable", "bus buffered", "store ceiling"} {
		if f := benchLine(t, out, 200, name); runtime.GOOS == "linux" && f[4] == "-" {
			t.Errorf("%s: no peak RSS on Linux", name)
		}
	}
	for _, want := range []string{"rows/s: ModelEvent rows", "ceiling: the same rows", "VmHWM of the run's own process"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "1.00 = flat") {
		t.Errorf("steadiness summary for a single size:\n%s", out)
	}
}

func TestBenchSteps(t *testing.T) {
	out := runBenchCmd(t, "--steps", "100,300", "--modes", "buffered")
	if !strings.Contains(strings.SplitN(out, "\n", 2)[0], "events 100,300,") {
		t.Errorf("header does not name the steps:\n%s", out)
	}
	for _, n := range []int{100, 300} {
		for _, name := range []string{"raw watermill", "bus buffered", "store ceiling"} {
			benchLine(t, out, n, name)
		}
	}
	if strings.Contains(out, "bus durable") {
		t.Errorf("--modes buffered ran durable:\n%s", out)
	}
	if !strings.Contains(out, "from 100 to 300 events (1.00 = flat):") || !strings.Contains(out, "bus buffered   events/s ×") {
		t.Errorf("no steadiness summary:\n%s", out)
	}
}

// TestBenchConfigStoreCleanup runs the bench into the config's store and checks that
// it deleted its rows and only its rows.
func TestBenchConfigStoreCleanup(t *testing.T) {
	for _, tc := range testenv.Stores {
		t.Run(tc.Driver, func(t *testing.T) {
			dsn := tc.DSN(t)
			ctx := context.Background()
			s, err := modelevent.Open(ctx, tc.Driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			keep := modelevent.Change{Event: modelevent.ModelEvent{MessageUUID: "keep-1", Direction: modelevent.Consumed,
				Handler: "billing", Topic: "eventbus.bench.keep", Backend: "memory", Payload: []byte("{}"),
				Status: modelevent.StatusFailed, Attempts: 1, LastError: "boom"},
				NewAttempts: []modelevent.Attempt{{StartedAt: now, Duration: time.Millisecond, Error: "boom"}}}
			if err := s.Write(ctx, []modelevent.Change{keep}); err != nil {
				t.Fatal(err)
			}
			kept, err := s.List(ctx, modelevent.Filter{}, modelevent.ListOptions{})
			if err != nil || len(kept.Events) != 1 {
				t.Fatalf("list before the bench: %v, %d rows", err, len(kept.Events))
			}
			t.Setenv("EVENTBUS_STORE_DRIVER", tc.Driver)
			t.Setenv("EVENTBUS_STORE_DSN", dsn)
			out := runBenchCmd(t, "--events", "300", "--use-config-store")
			if !strings.Contains(out, "store "+tc.Driver+" (the config's store)") {
				t.Errorf("header does not name the config's store:\n%s", out)
			}
			benchLine(t, out, 300, "store ceiling")
			st, err := s.Stats(ctx, modelevent.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if st.Total != 1 {
				t.Errorf("%d rows left in the store, want only the one written before the bench: %+v", st.Total, st.ByTopic)
			}
			ev, err := s.Get(ctx, kept.Events[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(ev.History) != 1 {
				t.Errorf("the kept row has %d attempts, want 1", len(ev.History))
			}
		})
	}
}

func TestBenchFlagErrors(t *testing.T) {
	t.Setenv("EVENTBUS_CONFIG", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--steps", "2k"}, `bench: --steps: "2k" is not a number`},
		{[]string{"--steps", "20000,"}, `bench: --steps: "" is not a number`},
		{[]string{"--steps", "0"}, `bench: --steps: 0: must be ≥ 1`},
		{[]string{"--steps", "100", "--events", "100"}, `bench: --steps: give --steps or --events, not both`},
		{[]string{"--events", "0"}, `bench: --events: must be ≥ 1, got 0`},
		{[]string{"--publishers", "0"}, `bench: --publishers: must be ≥ 1, got 0`},
		{[]string{"--payload", "-1"}, `bench: --payload: must be ≥ 0, got -1`},
		{[]string{"--payload", "2000000"}, `bench: --payload: 2000000 bytes is over max_payload_bytes 1048576`},
		{[]string{"--modes", "durable,fast"}, `bench: --modes: "fast" is not a record mode (accepted: durable, buffered)`},
		{[]string{"extra"}, `bench: unexpected argument "extra"`},
		{[]string{"--run", "fast"}, `bench: --run: "fast" is not a run (accepted: raw, durable, buffered, ceiling)`},
		{[]string{"--events", "x"}, `-events`},
	} {
		err := run(context.Background(), append([]string{"bench"}, tc.args...), io.Discard, io.Discard)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench %v: error %v, want a usage error containing %q", tc.args, err, tc.want)
		}
	}
}

// bench --json prints one JSON line per run and no table.
func TestBenchJSON(t *testing.T) {
	out := runBenchCmd(t, "--events", "200", "--modes", "durable", "--json")
	var lines []benchJSONLine
	if err := json.Unmarshal([]byte(out), &lines); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, out)
	}
	if problems, _ := jsonfmt.Check([]byte(out)); len(problems) != 0 {
		t.Errorf("bench --json breaks the JSON conventions: %v", problems)
	}
	var runs []string
	for _, l := range lines {
		runs = append(runs, l.Run)
		if l.Events != 200 || l.EventsPerSec <= 0 || l.Backend != "memory" {
			t.Errorf("line %+v", l)
		}
	}
	if strings.Join(runs, ",") != "raw,durable,ceiling" {
		t.Fatalf("runs %v", runs)
	}
}
