// Package testenv helps tests that need an external service (a database, a broker)
// find it, and decides what happens when it is not there.
//
// By default a test whose service is unreachable is skipped with a loud message that
// names the service and the environment variable pointing at it; once per service and
// test binary the same is written to the terminal (stderr without one), so that plain
// `go test ./...`, which hides the output of passing packages, still shows it. With
// EVENTBUS_REQUIRE_SERVICES=1 (as in CI, where the services are started) the same
// situation fails the test instead, so a missing service can never pass silently.
package testenv

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// RequireServicesEnv is the environment variable that turns a missing service from a
// skip into a failure when set to "1".
const RequireServicesEnv = "EVENTBUS_REQUIRE_SERVICES"

// Default addresses of the services on a developer machine and in CI.
const (
	DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	DefaultMySQLDSN    = "root@tcp(127.0.0.1:3306)/test?parseTime=true"
)

// ServicesRequired reports whether EVENTBUS_REQUIRE_SERVICES=1.
func ServicesRequired() bool { return os.Getenv(RequireServicesEnv) == "1" }

// EnvVar returns the environment variable that overrides the address of the named
// service: EVENTBUS_TEST_<NAME>_DSN, e.g. EVENTBUS_TEST_POSTGRES_DSN for "postgres".
func EnvVar(name string) string {
	up := strings.ToUpper(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, name))
	return "EVENTBUS_TEST_" + up + "_DSN"
}

// DSN returns the address of the named service: the value of EnvVar(name) when set,
// def otherwise.
func DSN(name, def string) string {
	if v := os.Getenv(EnvVar(name)); v != "" {
		return v
	}
	return def
}

// PostgresDSN returns EVENTBUS_TEST_POSTGRES_DSN, or DefaultPostgresDSN.
func PostgresDSN() string { return DSN("postgres", DefaultPostgresDSN) }

// MySQLDSN returns EVENTBUS_TEST_MYSQL_DSN, or DefaultMySQLDSN (MySQL or MariaDB).
func MySQLDSN() string { return DSN("mysql", DefaultMySQLDSN) }

// RequireService reports the outcome of connecting to the named service. With a nil
// err it does nothing. Otherwise it skips the test with a message naming the service,
// the error and the environment variables to set — or, when EVENTBUS_REQUIRE_SERVICES=1,
// fails it. Call it from the test's goroutine, as t.Skip and t.Fatal require.
func RequireService(t testing.TB, name string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if ServicesRequired() {
		t.Fatalf("service %s is required (%s=1) but unreachable: %v (set %s to its address)",
			name, RequireServicesEnv, err, EnvVar(name))
	}
	announceSkip(name, err)
	t.Skipf("SKIPPED: service %s is unreachable: %v — start it or set %s to its address; "+
		"set %s=1 to make this a failure", name, err, EnvVar(name), RequireServicesEnv)
}

var (
	announcedMu sync.Mutex
	announced   = map[string]bool{}
)

// announceSkip says, once per service and test binary, that tests skip for lack of
// it, where the developer sees it even in plain `go test ./...` (which shows a
// passing package's output only with -v): on the controlling terminal when there is
// one, else on stderr.
func announceSkip(name string, err error) {
	announcedMu.Lock()
	defer announcedMu.Unlock()
	if announced[name] {
		return
	}
	announced[name] = true
	var w io.Writer = os.Stderr
	if tty, terr := os.OpenFile("/dev/tty", os.O_WRONLY, 0); terr == nil {
		defer tty.Close()
		w = tty
	}
	pkg := filepath.Base(os.Args[0])
	fmt.Fprintf(w, "eventbus tests: %s: SKIPPING tests that need %s (unreachable: %v); set %s to its address, %s=1 to fail instead\n",
		strings.TrimSuffix(pkg, ".test"), name, err, EnvVar(name), RequireServicesEnv)
}
