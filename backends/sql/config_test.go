package sqlbackend_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	sqlbackend "github.com/go-eventbus/eventbus/backends/sql"
	"github.com/go-eventbus/eventbus/bus"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// TestWrongSettings: each mistake is one error naming the backend, the key and the fix,
// returned before or while connecting, within a bounded time.
func TestWrongSettings(t *testing.T) {
	t.Parallel()
	dead := closedPort(t)
	cases := []struct {
		name     string
		settings map[string]any
		want     []string
		notWant  string
	}{
		{"unknown key", map[string]any{"driver": "postgres", "dsn": "postgres://x@h/db", "brokers": "x"},
			[]string{"backend sql", "backend_settings.brokers: unknown key (accepted:", "dsn", "poll_interval"}, ""},
		{"no driver", map[string]any{"dsn": "postgres://x@h/db"},
			[]string{"backend sql", "backend_settings.driver: must be set (accepted: postgres, mysql)"}, ""},
		{"unknown driver", map[string]any{"driver": "oracle", "dsn": "x"},
			[]string{"backend_settings.driver: unknown driver \"oracle\" (accepted: postgres, mysql)"}, ""},
		{"sqlite not yet", map[string]any{"driver": "sqlite", "dsn": "file:x.db"},
			[]string{"backend_settings.driver: driver \"sqlite\" is not yet supported (accepted: postgres, mysql)"}, ""},
		{"no dsn", map[string]any{"driver": "mysql"},
			[]string{"backend_settings.dsn: must be set for driver mysql", "tcp(127.0.0.1:3306)"}, ""},
		{"bad postgres url", map[string]any{"driver": "postgres", "dsn": "mysql://root:hunter2@h/db"},
			[]string{"backend_settings.dsn: scheme \"mysql\" is not postgres://"}, "hunter2"},
		{"bad mysql dsn", map[string]any{"driver": "mysql", "dsn": "root:hunter2@127.0.0.1:3306/db"},
			[]string{"backend_settings.dsn:", "is not a MySQL DSN", "xxxxx"}, "hunter2"},
		{"bad duration", map[string]any{"driver": "mysql", "dsn": "root@tcp(h)/db", "poll_interval": "soon"},
			[]string{"backend_settings.poll_interval: \"soon\" is not a duration"}, ""},
		{"bad batch size", map[string]any{"driver": "mysql", "dsn": "root@tcp(h)/db", "batch_size": -1},
			[]string{"backend_settings.batch_size: must be ≥ 1"}, ""},
		{"bad table prefix", map[string]any{"driver": "mysql", "dsn": "root@tcp(h)/db", "table_prefix": "my-app"},
			[]string{"backend_settings.table_prefix: \"my-app\" may hold only letters, digits and _"}, ""},
		{"postgres unreachable", map[string]any{"driver": "postgres", "dsn": "postgres://app:hunter2@" + dead + "/db?sslmode=disable", "connect_timeout": "2s"},
			[]string{"backend sql: connect to postgres at \"postgres://app:xxxxx@" + dead + "/db?sslmode=disable\"", "unreachable within connect_timeout 2s", "check backend_settings.dsn"}, "hunter2"},
		{"postgres keyword dsn unreachable", map[string]any{"driver": "postgres", "dsn": "host=127.0.0.1 port=" + dead[strings.LastIndex(dead, ":")+1:] + " user=app password=hunter2", "connect_timeout": "2s"},
			[]string{"connect to postgres at \"host=127.0.0.1", "password=xxxxx"}, "hunter2"},
		{"mysql unreachable", map[string]any{"driver": "mysql", "dsn": "app:hunter2@tcp(" + dead + ")/db", "connect_timeout": "2s"},
			[]string{"backend sql: connect to mysql at \"app:xxxxx@tcp(" + dead + ")/db\"", "unreachable within connect_timeout 2s"}, "hunter2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			b, err := bus.OpenBackend(context.Background(), "sql", tc.settings, bus.BackendOptions{})
			if err == nil {
				_ = b.Close()
				t.Fatal("no error")
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("took %v", d)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\n does not contain %q", err, w)
				}
			}
			if tc.notWant != "" && strings.Contains(err.Error(), tc.notWant) {
				t.Errorf("error %q leaks %q", err, tc.notWant)
			}
		})
	}
}

// TestConnectTimeout: a database that never answers (a listener that never speaks) is
// given up after connect_timeout.
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold the connection, say nothing
		}
	}()
	for _, s := range []map[string]any{
		{"driver": "postgres", "dsn": "postgres://app@" + ln.Addr().String() + "/db?sslmode=disable", "connect_timeout": "500ms"},
		{"driver": "mysql", "dsn": "app@tcp(" + ln.Addr().String() + ")/db", "connect_timeout": "500ms"},
	} {
		start := time.Now()
		_, err := sqlbackend.New(context.Background(), decode(t, s), nil)
		if err == nil || !strings.Contains(err.Error(), "sql: connect to") || !strings.Contains(err.Error(), "connect_timeout 500ms") {
			t.Fatalf("%s: err = %v", s["driver"], err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s: gave up after %v with connect_timeout 500ms", s["driver"], d)
		}
	}
}

func decode(t *testing.T, s map[string]any) sqlbackend.Config {
	t.Helper()
	var cfg sqlbackend.Config
	if err := bus.DecodeSettings(s, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestRedactDSN(t *testing.T) {
	for _, tc := range []struct{ driver, in, want string }{
		{"postgres", "postgres://u:secret@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgres", "postgres://h/db?password=secret&user=u", "postgres://h/db?password=xxxxx&user=u"},
		{"postgres", "host=h user=u password=secret dbname=db", "host=h user=u password=xxxxx dbname=db"},
		{"postgres", "host=h password='se cret' dbname=db", "host=h password=xxxxx dbname=db"},
		{"mysql", "u:secret@tcp(h:3306)/db", "u:xxxxx@tcp(h:3306)/db"},
		{"mysql", "u@tcp(h:3306)/db", "u@tcp(h:3306)/db"},
	} {
		if got := sqlbackend.RedactDSN(tc.driver, tc.in); got != tc.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
