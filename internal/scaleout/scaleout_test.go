package scaleout

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/control"
)

// TestLoadSpread publishes 30,000 events from the three hosts: the consumer group
// spreads them over the three processes, and every event ends with one succeeded row.
func TestLoadSpread(t *testing.T) {
	d := newDeployment(t)
	const perHost = 10000
	var ps []*proc
	for i := range hosts {
		ps = append(ps, d.start(i, "--publish", fmt.Sprint(perHost)))
	}
	start := time.Now()
	waitFor(t, 3*time.Minute, "30,000 succeeded billing rows", func() bool {
		s, _ := d.billing()
		return s >= 3*perHost
	})
	elapsed := time.Since(start)
	for _, p := range ps {
		if n := p.published(); n != perHost {
			t.Errorf("%s published %d, want %d", p.host, n, perHost)
		}
	}
	s, rows := d.billing()
	if s != 3*perHost || rows != 3*perHost {
		t.Errorf("billing rows: %d succeeded of %d, want %d of %d", s, rows, 3*perHost, 3*perHost)
	}
	if n := d.produced("orders"); n != 3*perHost {
		t.Errorf("produced rows: %d, want %d", n, 3*perHost)
	}
	// Per-host counts, as the console shows them (its processes view reads the same
	// registry).
	var processed []int64
	waitFor(t, 10*time.Second, "heartbeats reporting every event", func() bool {
		processed = processed[:0]
		var sum int64
		for _, h := range hosts {
			n := consumerOf(d.process(h), "billing").Processed
			processed = append(processed, n)
			sum += n
		}
		return sum >= 3*perHost
	})
	for i, n := range processed {
		if n < perHost/10 {
			t.Errorf("%s handled %d of %d events: the group does not spread the load", hosts[i], n, 3*perHost)
		}
	}
	redelivered := d.count("SELECT count(*) FROM eventbus_events WHERE handler = 'billing' AND attempts > 1")
	t.Logf("30,000 events from 3 hosts in %v (%.0f events/s end to end); handled per host %v; %d rows with more than one attempt",
		elapsed.Round(time.Millisecond), float64(3*perHost)/elapsed.Seconds(), processed, redelivered)
}

// TestHostPartition cuts one host's link for 10 s while events flow: its in-flight
// messages go to the other hosts, nothing is lost, the console marks it gone and then
// live again, and a stop command queued for it while it was away is applied on return.
func TestHostPartition(t *testing.T) {
	d := newDeployment(t)
	const perHost = 4000
	var ps []*proc
	for i := range hosts {
		// 200 events/s per host: the stream is still flowing when the link is cut.
		ps = append(ps, d.start(i, "--publish", fmt.Sprint(perHost), "--rate", "200"))
	}
	victim := hosts[1]
	// Every host handles events before the cut, so that the others still have most of
	// their publishing ahead of them: on a loaded machine one node can take seconds
	// longer to start consuming than the others.
	waitFor(t, 30*time.Second, "every host handling events", func() bool {
		for _, h := range hosts {
			if consumerOf(d.process(h), "billing").Processed <= 100 {
				return false
			}
		}
		return true
	})
	for _, p := range ps {
		if p.published() >= 0 {
			t.Fatalf("%s finished publishing before the cut: the test needs more events per host", p.host)
		}
	}
	id := d.process(victim).ID
	cut := time.Now()
	script(t, "cut", victim)
	t.Cleanup(func() { script(t, "heal", victim) })
	waitFor(t, 20*time.Second, "the console to mark "+victim+" gone", func() bool {
		return d.process(victim).Gone
	})
	markedGone := time.Since(cut)
	// A stop queued for the partitioned process, from the console host.
	d.mustCLI("consumers", "stop", "billing", "--process", id)
	others := map[string]int64{}
	for _, h := range []string{hosts[0], hosts[2]} {
		others[h] = consumerOf(d.process(h), "billing").Processed
	}
	// The others go on at once unless the cut host led the stream's or the consumer's
	// Raft group: then JetStream first elects a new leader among the two left.
	var resumed time.Duration
	for time.Since(cut) < 10*time.Second || (resumed == 0 && time.Since(cut) < 30*time.Second) {
		if resumed == 0 {
			moved := 0
			for h, before := range others {
				if consumerOf(d.process(h), "billing").Processed > before {
					moved++
				}
			}
			if moved == len(others) {
				resumed = time.Since(cut)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if resumed == 0 {
		t.Errorf("the other hosts handled nothing in the 30 s after %s was cut off", victim)
		for _, p := range ps {
			t.Logf("%s: published %d (-1: still publishing)", p.host, p.published())
		}
		// What JetStream says on the two nodes left: the stream's and the consumer's
		// leaders and replicas.
		t.Logf("store sessions:\n%s", d.psql(d.db, `SELECT application_name, client_addr, state, wait_event_type, wait_event,
			round(extract(epoch FROM now() - xact_start)::numeric, 1), left(query, 100) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`))
		for i, p := range ps {
			if p.host != victim {
				t.Logf("node on %s:\n%s", p.host, tail(withoutRetries(p.output()), 15))
				t.Logf("NATS on %s:\n%s", p.host, d.jetStreamState(i+1))
			}
		}
	}
	cutFor := time.Since(cut)
	script(t, "heal", victim)
	healed := time.Now()
	waitFor(t, 30*time.Second, victim+" live again with billing stopped", func() bool {
		p := d.process(victim)
		return !p.Gone && consumerOf(p, "billing").State == control.Stopped
	})
	backAndStopped := time.Since(healed)
	d.mustCLI("consumers", "start", "billing", "--process", id)

	for _, p := range ps {
		p := p
		waitFor(t, 2*time.Minute, p.host+" done publishing", func() bool { return p.published() >= 0 })
	}
	total := 0
	for _, p := range ps {
		total += p.published()
	}
	waitFor(t, 2*time.Minute, "every published event handled", func() bool {
		s, _ := d.billing()
		return s >= d.produced("orders")
	})
	if lost := d.lost(); lost != "" {
		t.Errorf("published but never handled: %s", lost)
	}
	s, rows := d.billing()
	produced := d.produced("orders")
	if s != rows || produced < total {
		t.Errorf("billing %d succeeded of %d rows; %d produced rows for %d published", s, rows, produced, total)
	}
	redelivered := d.count("SELECT count(*) FROM eventbus_events WHERE handler = 'billing' AND attempts > 1")
	t.Logf("partition of %s for %v: the others handled events again %v after the cut; marked gone after %v (heartbeat %v, gone after %d), live with the queued stop applied %v after the heal; "+
		"%d events published, %d produced rows, %d succeeded, %d handled more than once",
		victim, cutFor.Round(time.Second), resumed.Round(time.Millisecond), markedGone.Round(time.Millisecond), heartbeat, control.GoneAfter, backAndStopped.Round(time.Millisecond),
		total, produced, s, redelivered)
}

// TestBrokerNodeLoss kills one NATS node mid-stream: with replicas 3 the other two
// keep publishing and consumption going, and the killed node rejoins.
func TestBrokerNodeLoss(t *testing.T) {
	d := newDeployment(t)
	const perHost = 4000
	var ps []*proc
	for i := range hosts {
		ps = append(ps, d.start(i, "--publish", fmt.Sprint(perHost), "--rate", "250"))
	}
	waitFor(t, 30*time.Second, "events flowing", func() bool {
		s, _ := d.billing()
		return s > 500
	})
	script(t, "nats-stop", "3")
	t.Cleanup(func() { _ = exec.Command("bash", env.script, "nats-start", "3").Run() })
	killed := time.Now()
	before, _ := d.billing()
	waitFor(t, 30*time.Second, "consumption to go on without node 3", func() bool {
		s, _ := d.billing()
		return s > before+1000
	})
	goOn := time.Since(killed)
	script(t, "nats-start", "3")
	// nats-start returns once node 3 answers /healthz: JetStream current again, its
	// streams caught up.
	rejoined := time.Since(killed)
	if _, err := runIn(consoleHost, "curl", "-sf", "http://10.77.0.3:8222/healthz"); err != nil {
		t.Errorf("node 3 not healthy after its restart: %v", err)
	}
	total := 0
	for _, p := range ps {
		p := p
		waitFor(t, 2*time.Minute, p.host+" done publishing", func() bool { return p.published() >= 0 })
		total += p.published()
	}
	if total != 3*perHost {
		t.Errorf("published %d, want %d", total, 3*perHost)
	}
	waitFor(t, 2*time.Minute, "every event handled", func() bool {
		s, _ := d.billing()
		return s >= total
	})
	if lost := d.lost(); lost != "" {
		t.Errorf("published but never handled: %s", lost)
	}
	t.Logf("NATS node 3 killed: 1,000 more events handled %v later; restarted, healthy (rejoined) %v after the kill; %d of %d published events handled",
		goOn.Round(time.Millisecond), rejoined.Round(time.Millisecond), total, 3*perHost)
}

// TestStoreLatency measures durable recording with 20 ms more round-trip time to the
// store beside none, in one run. Both runs reach PostgreSQL through the same delay
// proxy (this kernel has no netem), so the delay is the only difference.
func TestStoreLatency(t *testing.T) {
	const perHost = 6000
	run := func(t *testing.T, port int, oneWay time.Duration) float64 {
		d := newDeployment(t,
			"EVENTBUS_BACKEND_SETTINGS_SUBSCRIBERS_COUNT=128",
			"EVENTBUS_BACKEND_SETTINGS_MAX_ACK_PENDING=2048")
		d.delayStore(port, oneWay)
		for i := range hosts {
			d.start(i, "--publish", fmt.Sprint(perHost), "--publishers", "128")
		}
		start := time.Now()
		waitFor(t, 3*time.Minute, "every event handled", func() bool {
			s, _ := d.billing()
			return s >= 3*perHost
		})
		return float64(3*perHost) / time.Since(start).Seconds()
	}
	var base, delayed float64
	t.Run("no-delay", func(t *testing.T) { base = run(t, 5433, 0) })
	t.Run("20ms", func(t *testing.T) { delayed = run(t, 5434, 10*time.Millisecond) })
	t.Logf("durable recording, 3 hosts x %d events: %.0f events/s without delay, %.0f with 20 ms more round trip to the store (%.2fx)",
		perHost, base, delayed, delayed/base)
	// The ratio is a measurement, reported here and in docs/scale-out.md (target ≥ 0.5):
	// like any rate it depends on what else the machine runs, so it is not asserted.
	// What is asserted is that recording keeps up at all: before the single-statement
	// group commit and concurrent writers, writes queued past the write timeout and
	// the 20 ms run did not finish.
	if delayed < 0.2*base {
		t.Errorf("with 20 ms to the store: %.0f events/s, a fifth of %.0f: group commit is not amortising the round trip", delayed, base)
	}
}

// TestControlAcrossHosts stops a consumer on all three hosts from the console host
// within one heartbeat, and runs a retry command exactly once.
func TestControlAcrossHosts(t *testing.T) {
	d := newDeployment(t)
	var ps []*proc
	for i := range hosts {
		args := []string{}
		if i == 0 {
			args = []string{"--risky", "1"}
		}
		ps = append(ps, d.start(i, args...))
	}
	waitFor(t, 20*time.Second, "three live processes", func() bool {
		n := 0
		for _, p := range d.processes() {
			if !p.Gone && consumerOf(p, "billing").State == control.Running {
				n++
			}
		}
		return n == 3
	})
	issued := time.Now()
	d.mustCLI("consumers", "stop", "billing")
	waitFor(t, 10*time.Second, "billing stopped on every host", func() bool {
		for _, h := range hosts {
			if consumerOf(d.process(h), "billing").State != control.Stopped {
				return false
			}
		}
		return true
	})
	stopped := time.Since(issued)
	// The heartbeat applies the desired state and reports it: one interval to apply,
	// the next report to show it, plus the CLI's own start-up.
	if stopped > 3*heartbeat+2*time.Second {
		t.Errorf("billing stopped everywhere after %v, want within about one heartbeat (%v)", stopped, heartbeat)
	}
	d.mustCLI("consumers", "start", "billing")

	waitFor(t, 30*time.Second, "the risky event poisoned", func() bool {
		return d.count("SELECT count(*) FROM eventbus_events WHERE handler = 'fraud' AND status = 'poisoned'") == 1
	})
	runs := func() int {
		n := 0
		for _, p := range ps {
			n += len(p.lines("ran fraud "))
		}
		return n
	}
	if n := runs(); n != 1 {
		t.Fatalf("fraud ran %d times before the retry, want 1", n)
	}
	id := d.psql(d.db, "SELECT id FROM eventbus_events WHERE handler = 'fraud'")
	// The retry runs the handler again, which fails again: --wait reports that.
	out, err := d.cli("events", "retry", id, "--wait")
	if err == nil || !strings.Contains(out, "fraud service rejected the order") {
		t.Fatalf("events retry --wait: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, "the retry's run", func() bool { return runs() >= 2 })
	// Every process flushes its output when it stops: then count the runs.
	for _, p := range ps {
		p.stop(t)
	}
	if n := runs(); n != 2 {
		t.Errorf("fraud ran %d times after one retry command, want 2", n)
	}
	t.Logf("stop from the console host applied on 3 hosts in %v (heartbeat %v); retry: %s",
		stopped.Round(time.Millisecond), heartbeat, strings.TrimSpace(out))
}
