package scaleout

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/internal/testenv"
)

// The simulated hosts of scripts/cluster.sh.
var hosts = []string{"eb-h1", "eb-h2", "eb-h3"}

const (
	storeHost   = "10.77.0.10"
	consoleHost = "eb-console"
	heartbeat   = 500 * time.Millisecond
)

func natsURLs(first int) string {
	urls := []string{}
	for i := range hosts {
		j := (first + i) % len(hosts)
		urls = append(urls, fmt.Sprintf("nats://10.77.0.%d:4222", j+1))
	}
	return strings.Join(urls, ",")
}

// env is what the test programs share: binaries built once, the cluster up once.
var env struct {
	once     sync.Once
	err      error // why the cluster is unavailable
	dir      string
	node     string // the bus process of every host
	proxy    string // delayproxy
	nats     string // nats-server, built from the module version go.mod names
	eventbus string
	script   string
	up       bool
}

func TestMain(m *testing.M) {
	code := m.Run()
	if env.up {
		if out, err := exec.Command("bash", env.script, "down").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "cluster.sh down: %v\n%s", err, out)
		}
	}
	if env.dir != "" {
		os.RemoveAll(env.dir)
	}
	os.Exit(code)
}

// scaleOutEnv turns the scale-out tests on. They are off in a plain `go test ./...`:
// they need root, take minutes, and the namespaces they build have fixed names, so two
// runs at once would collide.
const scaleOutEnv = "EVENTBUS_TEST_SCALEOUT"

// errNoNamespaces is why the cluster cannot be built on this machine.
var errNoNamespaces = errors.New("network namespaces need Linux and root")

// cluster brings the simulated hosts up (once per test binary) or skips the test loudly
// (fails it under EVENTBUS_REQUIRE_SERVICES=1) when the machine cannot host them.
func cluster(t *testing.T) {
	t.Helper()
	if os.Getenv(scaleOutEnv) != "1" {
		t.Skipf("SKIPPED: the scale-out tests build simulated hosts (root, a few minutes); set %s=1 to run them (docs/scale-out.md)", scaleOutEnv)
	}
	env.once.Do(func() {
		if runtime.GOOS != "linux" || os.Geteuid() != 0 {
			env.err = errNoNamespaces
			return
		}
		root, err := filepath.Abs("../..")
		if err != nil {
			env.err = err
			return
		}
		env.script = filepath.Join(root, "scripts", "cluster.sh")
		env.dir, err = os.MkdirTemp("", "eventbus-scaleout")
		if err != nil {
			env.err = err
			return
		}
		env.node = filepath.Join(env.dir, "node")
		env.eventbus = filepath.Join(env.dir, "eventbus")
		env.proxy = filepath.Join(env.dir, "delayproxy")
		env.nats = filepath.Join(env.dir, "nats-server")
		for bin, pkg := range map[string]string{env.node: "./internal/scaleout/node", env.eventbus: "./cmd/eventbus",
			env.proxy: "./internal/scaleout/delayproxy", env.nats: "github.com/nats-io/nats-server/v2"} {
			cmd := exec.Command("go", "build", "-o", bin, pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				env.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
		// The cluster runs the nats-server release the embedded backend is built on
		// (go.mod), not Debian's 2.9.10: on 2.9.10 a push consumer's leader sometimes
		// stopped delivering to the live hosts' queue subscribers for the whole of a
		// partition (docs/scale-out.md). NATS_SERVER picks another binary.
		if os.Getenv("NATS_SERVER") == "" {
			os.Setenv("NATS_SERVER", env.nats)
		}
		// A cluster left behind by a killed run goes first.
		_ = exec.Command("bash", env.script, "down").Run()
		out, err := exec.Command("bash", env.script, "up").CombinedOutput()
		if err != nil {
			var exit *exec.ExitError
			if errors.As(err, &exit) && exit.ExitCode() == 3 {
				env.err = fmt.Errorf("%w: %s", errNoNamespaces, bytes.TrimSpace(out))
			} else {
				env.err = fmt.Errorf("cluster.sh up: %v\n%s", err, out)
			}
			_ = exec.Command("bash", env.script, "down").Run()
			return
		}
		env.up = true
	})
	if env.err != nil {
		if errors.Is(env.err, errNoNamespaces) {
			testenv.RequireService(t, "cluster (scripts/cluster.sh)", env.err)
		}
		t.Fatal(env.err)
	}
}

// script runs cluster.sh with args.
func script(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("bash", append([]string{env.script}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("cluster.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// deployment is one test's bus: its own database on the shared PostgreSQL and its own
// stream names on the NATS cluster.
type deployment struct {
	t      *testing.T
	db     string
	prefix string
	extra  []string
	// storePort is where the processes reach PostgreSQL: 5432, or a delay proxy's port.
	storePort int
}

func newDeployment(t *testing.T, extra ...string) *deployment {
	cluster(t)
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(t.Name()))
	name := fmt.Sprintf("so_%s_%d", clean, time.Now().UnixNano()%1e6)
	d := &deployment{t: t, db: name, prefix: strings.ReplaceAll(name, "_", "-"), extra: extra, storePort: 5432}
	d.psql("postgres", "CREATE DATABASE "+name)
	t.Cleanup(func() {
		// The processes are stopped by their own cleanups, which run first.
		d.psql("postgres", "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return d
}

func (d *deployment) dsn() string {
	return fmt.Sprintf("postgres://postgres@%s:%d/%s?sslmode=disable", storeHost, d.storePort, d.db)
}

// environ is the configuration of every process of the deployment on host i (0-2;
// -1 for the console host).
func (d *deployment) environ(i int) []string {
	first := i
	if first < 0 {
		first = 0
	}
	name := consoleHost
	if i >= 0 {
		name = hosts[i]
	}
	return append(append(os.Environ(),
		"EVENTBUS_BACKEND=nats",
		"EVENTBUS_BACKEND_SETTINGS_URL="+natsURLs(first),
		"EVENTBUS_BACKEND_SETTINGS_REPLICAS=3",
		"EVENTBUS_BACKEND_SETTINGS_STREAM_PREFIX="+d.prefix+"-",
		"EVENTBUS_BACKEND_SETTINGS_DURABLE_PREFIX="+d.prefix+"-",
		"EVENTBUS_BACKEND_SETTINGS_QUEUE_GROUP_PREFIX="+d.prefix+"-",
		"EVENTBUS_BACKEND_SETTINGS_SUBJECT_PREFIX="+d.prefix+".",
		"EVENTBUS_BACKEND_SETTINGS_ACK_WAIT=3s",
		"EVENTBUS_BACKEND_SETTINGS_RECONNECT_WAIT=250ms",
		"EVENTBUS_STORE_DRIVER=postgres",
		"EVENTBUS_STORE_DSN="+d.dsn(),
		"EVENTBUS_RETRY_MAX_RETRIES=0",
		"EVENTBUS_PROCESS_NAME="+name,
		"EVENTBUS_PROCESS_HEARTBEAT_INTERVAL="+heartbeat.String(),
		"EVENTBUS_PROCESS_COMMAND_POLL_INTERVAL=100ms",
	), d.extra...)
}

// psql runs SQL on the shared PostgreSQL from the console host and returns its rows.
func (d *deployment) psql(db, sql string) string {
	d.t.Helper()
	out, err := exec.Command("ip", "netns", "exec", consoleHost, "psql", "-h", storeHost, "-U", "postgres",
		"-d", db, "-v", "ON_ERROR_STOP=1", "-tAc", sql).CombinedOutput()
	if err != nil {
		d.t.Fatalf("psql %q: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (d *deployment) count(sql string) int {
	d.t.Helper()
	n, err := strconv.Atoi(d.psql(d.db, sql))
	if err != nil {
		d.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// proc is a node running on one host.
type proc struct {
	host string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	// stopped is set once the test stops the node: an exit after that is expected.
	stopped bool
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) lines(prefix string) []string {
	var ls []string
	sc := bufio.NewScanner(strings.NewReader(p.output()))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			ls = append(ls, sc.Text())
		}
	}
	return ls
}

// published is what the node printed after its publishing ended, or -1.
func (p *proc) published() int {
	ls := p.lines("published ")
	if len(ls) == 0 {
		return -1
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(ls[0], "published "))
	return n
}

// start runs the node on host i with args; it is stopped (SIGTERM, then SIGKILL) when
// the test ends.
func (d *deployment) start(i int, args ...string) *proc {
	d.t.Helper()
	p := &proc{host: hosts[i], done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", hosts[i], env.node}, args...)...)
	p.cmd.Env = d.environ(i)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	d.t.Cleanup(func() { p.stop(d.t) })
	waitFor(d.t, 30*time.Second, p.host+" running", func() bool {
		select {
		case <-p.done:
			d.t.Fatalf("node on %s exited:\n%s", p.host, p.output())
		default:
		}
		return len(p.lines("running")) > 0
	})
	return p
}

func (p *proc) stop(t *testing.T) {
	if p.stopped {
		return
	}
	p.stopped = true
	exited := ""
	select {
	case <-p.done:
		// It ended before the test stopped it: say how, whatever the outcome.
		exited = fmt.Sprintf(" (it had exited before the test ended: %v)", p.cmd.ProcessState)
		t.Errorf("node on %s exited on its own: %v", p.host, p.cmd.ProcessState)
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if t.Failed() {
		t.Logf("node on %s%s:\n%s", p.host, exited, tail(withoutRetries(p.output()), 40))
	}
}

// withoutRetries drops the node's "publish failed; retrying" lines (one per failed try
// of every publisher while a stream has no leader) and counts them instead, so that the
// lines around them stay in a tail.
func withoutRetries(s string) string {
	var kept []string
	dropped := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "publish failed; retrying") {
			dropped++
			continue
		}
		kept = append(kept, l)
	}
	if dropped > 0 {
		kept = append(kept, fmt.Sprintf("(and %d \"publish failed; retrying\" lines)", dropped))
	}
	return strings.Join(kept, "\n")
}

func tail(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// cli runs the eventbus command on the console host.
func (d *deployment) cli(args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", consoleHost, env.eventbus}, args...)...)
	cmd.Env = d.environ(-1)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (d *deployment) mustCLI(args ...string) string {
	d.t.Helper()
	out, err := d.cli(args...)
	if err != nil {
		d.t.Fatalf("eventbus %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (d *deployment) processes() []control.Process {
	d.t.Helper()
	var ps []control.Process
	if err := json.Unmarshal([]byte(d.mustCLI("processes", "--json")), &ps); err != nil {
		d.t.Fatal(err)
	}
	return ps
}

func (d *deployment) process(name string) control.Process {
	for _, p := range d.processes() {
		if p.Name == name {
			return p
		}
	}
	return control.Process{}
}

func consumerOf(p control.Process, name string) control.ConsumerStatus {
	for _, c := range p.Consumers {
		if c.Name == name {
			return c
		}
	}
	return control.ConsumerStatus{}
}

// waitFor polls cond every 100 ms until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// succeeded counts the billing rows that succeeded, and all billing rows.
func (d *deployment) billing() (succeeded, rows int) {
	d.t.Helper()
	out := d.psql(d.db, "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FROM eventbus_events WHERE handler = 'billing'")
	parts := strings.Split(out, "|")
	succeeded, _ = strconv.Atoi(parts[0])
	rows, _ = strconv.Atoi(parts[1])
	return succeeded, rows
}

// produced counts the published rows on a topic.
func (d *deployment) produced(topic string) int {
	return d.count("SELECT count(*) FROM eventbus_events WHERE direction = 'produced' AND topic = '" + topic + "'")
}

// lost lists up to 5 produced messages on orders without a succeeded billing row.
func (d *deployment) lost() string {
	return d.psql(d.db, `SELECT string_agg(message_uuid, ' ') FROM (SELECT p.message_uuid FROM eventbus_events p
		LEFT JOIN eventbus_events c ON c.message_uuid = p.message_uuid AND c.handler = 'billing' AND c.status = 'succeeded'
		WHERE p.direction = 'produced' AND p.topic = 'orders' AND c.id IS NULL LIMIT 5) x`)
}

// runIn runs a command inside a host's network namespace.
func runIn(host string, name string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", host, name}, args...)...).CombinedOutput()
	return string(out), err
}

// delayStore puts a delay proxy in front of PostgreSQL on the store host (delay each way)
// and points the deployment's processes at it.
func (d *deployment) delayStore(port int, delay time.Duration) {
	d.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", "eb-db", env.proxy,
		"--listen", fmt.Sprintf("%s:%d", storeHost, port), "--to", storeHost+":5432", "--delay", delay.String())
	out := &proc{host: "eb-db", done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	out.cmd = cmd
	go func() { _ = cmd.Wait(); close(out.done) }()
	d.t.Cleanup(func() { out.stop(d.t) })
	waitFor(d.t, 10*time.Second, "the delay proxy listening", func() bool { return len(out.lines("listening")) > 0 })
	d.storePort = port
}

// jetStreamState is what NATS node n (1-3) says of the deployment's streams and
// consumers (leader, replicas, what is pending), and the last lines of its log: the
// diagnosis a test logs when consumption stalls.
func (d *deployment) jetStreamState(n int) string {
	out, err := exec.Command("ip", "netns", "exec", hosts[n-1], "curl", "-s", "-m", "5",
		fmt.Sprintf("http://10.77.0.%d:8222/jsz?consumers=true", n)).Output()
	var b strings.Builder
	if err != nil {
		fmt.Fprintf(&b, "jsz: %v\n", err)
	} else {
		var jsz struct {
			Meta struct {
				Leader string `json:"leader"`
			} `json:"meta_cluster"`
			Accounts []struct {
				Streams []struct {
					Name    string `json:"name"`
					Cluster struct {
						Leader   string `json:"leader"`
						Replicas []struct {
							Name    string `json:"name"`
							Current bool   `json:"current"`
							Active  int64  `json:"active"`
						} `json:"replicas"`
					} `json:"cluster"`
					State struct {
						Msgs uint64 `json:"messages"`
					} `json:"state"`
					Consumers []struct {
						Name       string `json:"name"`
						Pending    uint64 `json:"num_pending"`
						AckPending int    `json:"num_ack_pending"`
						Redeliver  int    `json:"num_redelivered"`
						Waiting    int    `json:"num_waiting"`
						PushBound  bool   `json:"push_bound"`
						Cluster    struct {
							Leader string `json:"leader"`
						} `json:"cluster"`
					} `json:"consumer_detail"`
				} `json:"stream_detail"`
			} `json:"account_details"`
		}
		if err := json.Unmarshal(out, &jsz); err != nil {
			fmt.Fprintf(&b, "jsz: %v\n", err)
		}
		fmt.Fprintf(&b, "meta leader %q\n", jsz.Meta.Leader)
		for _, a := range jsz.Accounts {
			for _, s := range a.Streams {
				if !strings.HasPrefix(s.Name, d.prefix) {
					continue
				}
				fmt.Fprintf(&b, "stream %s: leader %q, %d messages, replicas %+v\n", s.Name, s.Cluster.Leader, s.State.Msgs, s.Cluster.Replicas)
				for _, c := range s.Consumers {
					fmt.Fprintf(&b, "  consumer %s: leader %q, pending %d, ack pending %d, redelivered %d, push bound %v\n",
						c.Name, c.Cluster.Leader, c.Pending, c.AckPending, c.Redeliver, c.PushBound)
				}
			}
		}
	}
	dir := os.Getenv("EVENTBUS_CLUSTER_DIR")
	if dir == "" {
		dir = "/tmp/eventbus-cluster"
	}
	if log, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("nats%d", n), "log")); err == nil {
		fmt.Fprintf(&b, "log:\n%s", tail(string(log), 25))
	}
	return b.String()
}
