package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/internal/testenv/natstest"
	"github.com/go-eventbus/eventbus/modelevent"
)

// binary is the eventbus command built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eventbus-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "eventbus")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build eventbus: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// node is one eventbus process of a test.
type node struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

// cluster runs eventbus commands against one store.
type cluster struct {
	t   *testing.T
	env []string
}

func newCluster(t *testing.T, env ...string) *cluster {
	base := append(os.Environ(),
		"EVENTBUS_PROCESS_HEARTBEAT_INTERVAL=200ms",
		"EVENTBUS_PROCESS_COMMAND_POLL_INTERVAL=50ms",
	)
	return &cluster{t: t, env: append(base, env...)}
}

// start runs `eventbus demo` in the background until the test ends.
func (c *cluster) start(args ...string) *node {
	c.t.Helper()
	cmd := exec.Command(binary, append([]string{"demo", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = c.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	n := &node{cmd: cmd, out: &out}
	c.t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if c.t.Failed() {
			c.t.Logf("demo pid %d output:\n%s", cmd.Process.Pid, out.String())
		}
	})
	return n
}

// run runs an eventbus command to completion.
func (c *cluster) run(args ...string) (string, error) {
	cmd := exec.Command(binary, args...)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *cluster) mustRun(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("eventbus %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// processes lists the registered processes; none while the store does not exist yet
// (a demo starting up has not created its SQLite file).
func (c *cluster) processes() []control.Process {
	c.t.Helper()
	out, err := c.run("processes", "--json")
	if err != nil && strings.Contains(out, "no store found") {
		return nil
	}
	if err != nil {
		c.t.Fatalf("eventbus processes --json: %v\n%s", err, out)
	}
	var ps []control.Process
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		c.t.Fatal(err)
	}
	return ps
}

func (c *cluster) eventually(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func consumer(p control.Process, name string) control.ConsumerStatus {
	for _, c := range p.Consumers {
		if c.Name == name {
			return c
		}
	}
	return control.ConsumerStatus{}
}

// TestProcessesSharingPostgres runs three bus processes on one PostgreSQL store and
// steers them with the CLI from outside: stop and start a consumer everywhere, retry a
// poisoned event through a command, and see a killed process marked gone.
//
// It runs twice: each process on its own memory broker (the control plane alone), and
// the three sharing the NATS JetStream server as their broker (consumer groups: the
// processes share each consumer's messages).
func TestProcessesSharingPostgres(t *testing.T) {
	t.Run("memory-broker", func(t *testing.T) { testProcessesSharingPostgres(t) })
	t.Run("nats-broker", func(t *testing.T) {
		url := testenv.DSN("nats", "nats://127.0.0.1:4222")
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "nats://"), 2*time.Second)
		if err == nil {
			conn.Close()
		}
		testenv.RequireService(t, "nats", err)
		p := fmt.Sprintf("e2e%d", time.Now().UnixNano())
		t.Cleanup(func() { natstest.DeleteStreams(t, url, p+"_") })
		testProcessesSharingPostgres(t, "EVENTBUS_BACKEND=nats", "EVENTBUS_BACKEND_SETTINGS_URL="+url,
			"EVENTBUS_BACKEND_SETTINGS_SUBJECT_PREFIX="+p+".", "EVENTBUS_BACKEND_SETTINGS_STREAM_PREFIX="+p+"_",
			"EVENTBUS_BACKEND_SETTINGS_DURABLE_PREFIX="+p+"_", "EVENTBUS_BACKEND_SETTINGS_QUEUE_GROUP_PREFIX="+p+"_")
	})
}

func testProcessesSharingPostgres(t *testing.T, env ...string) {
	dsn := testenv.FreshPostgres(t)
	c := newCluster(t, append([]string{"EVENTBUS_STORE_DRIVER=postgres", "EVENTBUS_STORE_DSN=" + dsn}, env...)...)
	c.mustRun("migrate")
	nodes := []*node{c.start("--rate", "20"), c.start("--rate", "20"), c.start("--rate", "20")}
	c.eventually("three live processes with their consumers", func() bool {
		ps := c.processes()
		live := 0
		for _, p := range ps {
			if !p.Gone && consumer(p, "billing").Processed > 0 {
				live++
			}
		}
		return live == 3
	})

	// Stop billing everywhere: every process stops it within a heartbeat and its
	// processed count stops growing.
	c.mustRun("consumers", "stop", "billing")
	c.eventually("billing stopped in every process", func() bool {
		for _, p := range c.processes() {
			if consumer(p, "billing").State != "stopped" {
				return false
			}
		}
		return true
	})
	before := map[string]int64{}
	for _, p := range c.processes() {
		before[p.ID] = consumer(p, "billing").Processed
	}
	time.Sleep(time.Second)
	for _, p := range c.processes() {
		if got := consumer(p, "billing").Processed; got != before[p.ID] {
			t.Fatalf("process %s processed %d billing messages while stopped (was %d)", p.ID, got, before[p.ID])
		}
		if consumer(p, "shipping").State != "running" {
			t.Fatalf("shipping stopped too in %s", p.ID)
		}
	}
	c.mustRun("consumers", "start", "billing")
	c.eventually("billing running and processing again everywhere", func() bool {
		for _, p := range c.processes() {
			if consumer(p, "billing").Processed <= before[p.ID] {
				return false
			}
		}
		return true
	})

	// Retry a poisoned event from outside: exactly one process runs it, once.
	var poisoned modelevent.Page
	c.eventually("a poisoned event", func() bool {
		out := c.mustRun("events", "list", "--status", "poisoned", "--limit", "1", "--json")
		_ = json.Unmarshal([]byte(out), &poisoned)
		return len(poisoned.Events) == 1
	})
	ev := poisoned.Events[0]
	out, err := c.run("events", "retry", ev.ID, "--wait", "--json")
	var cmd control.Command
	if jerr := json.Unmarshal([]byte(out), &cmd); jerr != nil {
		t.Fatalf("retry: %v %v\n%s", err, jerr, out)
	}
	if cmd.Status != control.CommandFailed || !strings.Contains(cmd.Error, "fraud service rejected") || cmd.ClaimedBy == "" {
		t.Fatalf("retry command = %+v", cmd)
	}
	shown := c.mustRun("events", "show", ev.ID, "--json")
	var after modelevent.ModelEvent
	var keys map[string]json.RawMessage
	if err := json.Unmarshal([]byte(shown), &after); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(shown), &keys); err != nil || keys["payload"] == nil || keys["payload_base64"] != nil {
		t.Fatalf("events show --json: a JSON payload is not JSON (%v): %s", err, shown)
	}
	if after.Attempts != ev.Attempts+1 || after.Status != modelevent.StatusPoisoned {
		t.Fatalf("after one retry: attempts %d → %d, status %s", ev.Attempts, after.Attempts, after.Status)
	}

	// Bad input gets clear errors and does nothing.
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"consumers", "stop", "nobody"}, `unknown consumer "nobody"`},
		{[]string{"consumers", "stop", "billing", "--process", "no-such"}, `process "no-such"`},
		{[]string{"events", "retry", "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, "not found"},
		{[]string{"events", "retry", ev.ID, "--consumer", "ghost"}, `unknown consumer "ghost"`},
		{[]string{"events", "retry", "not-an-id"}, "not found"},
	} {
		out, err := c.run(bad.args...)
		if err == nil || !strings.Contains(out, bad.want) {
			t.Errorf("eventbus %s: err %v, output %q; want it to mention %q", strings.Join(bad.args, " "), err, out, bad.want)
		}
	}

	// A killed process shows as gone.
	victim := nodes[2].cmd.Process.Pid
	if err := nodes[2].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var gone string
	c.eventually("the killed process marked gone", func() bool {
		for _, p := range c.processes() {
			if p.PID == victim {
				gone = p.ID
				return p.Gone
			}
		}
		return false
	})
	// Commands for it say it is gone: a stop waits in the store for its return, a
	// consumer it never ran is refused.
	out, err = c.run("consumers", "stop", "billing", "--process", gone)
	if err != nil || !strings.Contains(out, "process "+gone+", which is gone") {
		t.Errorf("stop in a gone process: err %v, output %q", err, out)
	}
	c.mustRun("consumers", "start", "billing", "--process", gone)
	out, err = c.run("consumers", "stop", "ghost", "--process", gone)
	if err == nil || !strings.Contains(out, "process "+gone+", which is gone") {
		t.Errorf("stop of an unknown consumer in a gone process: err %v, output %q", err, out)
	}

	// A bulk retry with --wait waits for every command and sums them up: the fraud
	// check rejects again, so each command fails, and none is left pending.
	out, _ = c.run("events", "retry", "--status", "poisoned", "--handler", "fraud-check", "--yes", "--wait", "--json")
	var wr bulkWaitResult
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&wr); err != nil {
		t.Fatalf("bulk retry --wait --json: %v\n%s", err, out)
	}
	if wr.Enqueued == 0 || wr.Pending != 0 || wr.FailedCommands != wr.Enqueued || !strings.Contains(strings.Join(wr.CommandErrors, " "), "fraud service rejected") {
		t.Fatalf("bulk retry --wait = %+v", wr)
	}
	out, err = c.run("events", "retry", "--status", "poisoned", "--handler", "fraud-check", "--yes", "--wait")
	if err == nil || !strings.Contains(out, "matched: 0 succeeded, ") || !strings.Contains(out, " failed, 0 still pending after 30s") {
		t.Fatalf("bulk retry --wait summary: err %v\n%s", err, out)
	}
}

// TestStopDemoConsumerFromAnotherTerminal is the single-process SQLite case: the demo
// runs, and `eventbus consumers stop` from a second terminal stops its consumer.
func TestStopDemoConsumerFromAnotherTerminal(t *testing.T) {
	db := filepath.Join(t.TempDir(), "demo.db")
	c := newCluster(t, "EVENTBUS_STORE_DSN=file:"+db)
	c.start("--rate", "50")
	c.eventually("the demo registered", func() bool {
		ps := c.processes()
		return len(ps) == 1 && consumer(ps[0], "shipping").Processed > 0
	})
	c.mustRun("consumers", "stop", "shipping")
	c.eventually("shipping stopped", func() bool { return consumer(c.processes()[0], "shipping").State == "stopped" })
	n := consumer(c.processes()[0], "shipping").Processed
	time.Sleep(time.Second)
	if got := consumer(c.processes()[0], "shipping").Processed; got != n {
		t.Fatalf("stopped consumer went on: %d → %d", n, got)
	}
	c.mustRun("consumers", "start", "shipping")
	c.eventually("shipping processing again", func() bool { return consumer(c.processes()[0], "shipping").Processed > n })

	c.eventually("poisoned fraud-check events listed", func() bool {
		return strings.Contains(c.mustRun("events", "list", "--status", "poisoned", "--limit", "2"), "fraud-check")
	})
}
