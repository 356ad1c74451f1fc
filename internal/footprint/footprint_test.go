// Package footprint holds the tests that keep heavy dependencies out of programs that do
// not use them: a broker client, a database driver or the embedded NATS server is
// linked only by the import that asks for it (docs/development.md, "Footprint").
package footprint

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const module = "github.com/go-eventbus/eventbus/"

// heavy are the modules a program on the memory backend and SQLite must not link.
var heavy = []string{
	"github.com/jackc/pgx/",
	"github.com/go-sql-driver/mysql",
	"github.com/lib/pq",
	"github.com/ThreeDotsLabs/watermill-sql/",
	"github.com/IBM/sarama",
	"github.com/twmb/franz-go",
	"github.com/ThreeDotsLabs/watermill-kafka/",
	"github.com/rabbitmq/amqp091-go",
	"github.com/ThreeDotsLabs/watermill-amqp/",
	"github.com/nats-io/",
	"github.com/ThreeDotsLabs/watermill-nats/",
}

// goTool returns the go command, skipping t when there is none (an installed test binary).
func goTool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("SKIP: no go command in PATH (%v): the dependency lists cannot be checked", err)
	}
	return path
}

// deps returns the import paths pkg links, itself included.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command(goTool(t), "list", "-deps", pkg).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	return strings.Fields(string(out))
}

// linked returns the packages of deps under any of prefixes.
func linked(deps []string, prefixes ...string) []string {
	var out []string
	for _, d := range deps {
		for _, p := range prefixes {
			if strings.HasPrefix(d, p) {
				out = append(out, d)
				break
			}
		}
	}
	return out
}

// TestDependencies: bus and the README's library example link no broker client and no
// SQL driver but SQLite's; modelevent links no database driver at all; the nats backend
// does not link the NATS server, and the packages that should link each do.
func TestDependencies(t *testing.T) {
	for _, tc := range []struct {
		pkg       string
		forbidden []string
		required  []string
	}{
		{"bus", heavy, []string{"modernc.org/sqlite"}},
		{"examples/quickstart", heavy, []string{"modernc.org/sqlite"}},
		{"modelevent", append([]string{"modernc.org/sqlite"}, heavy...), nil},
		{"middleware", append([]string{"modernc.org/sqlite"}, heavy...), nil},
		{"modelevent/postgres", nil, []string{"github.com/jackc/pgx/"}},
		{"modelevent/mysql", nil, []string{"github.com/go-sql-driver/mysql"}},
		{"outbox", nil, []string{"github.com/ThreeDotsLabs/watermill-sql/"}},
		{"backends/nats", []string{"github.com/nats-io/nats-server/", "github.com/ThreeDotsLabs/watermill-sql/", "github.com/jackc/pgx/"},
			[]string{"github.com/nats-io/nats.go"}},
		{"internal/footprint/testdata/natsclient", []string{"github.com/nats-io/nats-server/", "github.com/ThreeDotsLabs/watermill-sql/", "github.com/jackc/pgx/"},
			[]string{"github.com/nats-io/nats.go"}},
		{"backends/nats/embedded", nil, []string{"github.com/nats-io/nats-server/"}},
		{"backends/kafka", []string{"github.com/nats-io/", "github.com/rabbitmq/", "github.com/ThreeDotsLabs/watermill-sql/"}, []string{"github.com/IBM/sarama"}},
		{"backends/amqp", []string{"github.com/nats-io/", "github.com/IBM/sarama", "github.com/ThreeDotsLabs/watermill-sql/"}, []string{"github.com/rabbitmq/amqp091-go"}},
	} {
		t.Run(tc.pkg, func(t *testing.T) {
			d := deps(t, module+tc.pkg)
			if bad := linked(d, tc.forbidden...); len(bad) > 0 {
				t.Errorf("%s links %d forbidden package(s):\n\t%s\n(go mod why -m <module> shows the path)", tc.pkg, len(bad), strings.Join(bad, "\n\t"))
			}
			for _, r := range tc.required {
				if len(linked(d, r)) == 0 {
					t.Errorf("%s does not link %s (the test's list is stale?)", tc.pkg, r)
				}
			}
		})
	}
}

// maxQuickstartBytes is the aim for the README's library example, built as a release
// binary is (-trimpath -ldflags "-s -w"). docs/development.md has the measured sizes.
const maxQuickstartBytes = 12 << 20

// TestQuickstart builds the README's library example, checks its size, runs it on the
// embedded default, and checks that a store driver or the outbox that is not linked is
// an error naming the config key and the import to add.
func TestQuickstart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	goCmd := goTool(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "quickstart")
	build := exec.Command(goCmd, "build", "-trimpath", "-ldflags=-s -w", "-o", bin, module+"examples/quickstart")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("quickstart: %.1f MiB (-trimpath -s -w)", float64(fi.Size())/(1<<20))
	if fi.Size() > maxQuickstartBytes {
		t.Errorf("quickstart is %d bytes, over the %d of the aim: what did it start linking? (bash scripts/footprint.sh)", fi.Size(), maxQuickstartBytes)
	}

	run := func(env ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin)
		cmd.Dir = dir
		cmd.Env = append(cleanEnv(), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	out, err := run()
	if err != nil || !strings.Contains(out, "consumed billing  succeeded") || !strings.Contains(out, "produced") {
		t.Errorf("quickstart on the embedded default: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		env  []string
		want []string
	}{
		{[]string{"EVENTBUS_STORE_DRIVER=postgres", "EVENTBUS_STORE_DSN=postgres://127.0.0.1:1/x"},
			[]string{"store.driver", `"postgres" is not linked`, `import _ "github.com/go-eventbus/eventbus/modelevent/postgres"`}},
		{[]string{"EVENTBUS_STORE_DRIVER=mysql", "EVENTBUS_STORE_DSN=u@tcp(127.0.0.1:1)/x"},
			[]string{"store.driver", `import _ "github.com/go-eventbus/eventbus/modelevent/mysql"`}},
		{[]string{"EVENTBUS_OUTBOX_ENABLED=true", "EVENTBUS_STORE_DSN=file:" + filepath.Join(dir, "outbox.db")},
			[]string{"outbox.enabled", `import _ "github.com/go-eventbus/eventbus/outbox"`}},
	} {
		out, err := run(tc.env...)
		if err == nil {
			t.Errorf("%v: quickstart succeeded, want an error\n%s", tc.env, out)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.env, w, out)
			}
		}
	}
}

// cleanEnv is the test's environment without EVENTBUS_* variables, which would
// configure the program under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EVENTBUS_") {
			env = append(env, kv)
		}
	}
	return env
}

// TestEmbeddedNATSNotLinked: embedded: true in a program that imports the nats backend
// alone is an error naming the key and the import that links the server.
func TestEmbeddedNATSNotLinked(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "natsclient")
	if out, err := exec.Command(goTool(t), "build", "-o", bin, module+"internal/footprint/testdata/natsclient").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "EVENTBUS_BACKEND=nats", "EVENTBUS_BACKEND_SETTINGS_EMBEDDED=true")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("embedded: true without the server linked succeeded:\n%s", out)
	}
	for _, w := range []string{"backend_settings.embedded", `import _ "github.com/go-eventbus/eventbus/backends/nats/embedded"`} {
		if !strings.Contains(string(out), w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}
