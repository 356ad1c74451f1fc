package sqlbackend_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	sqlbackend "github.com/go-eventbus/eventbus/backends/sql"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/internal/tcpproxy"
	"github.com/go-eventbus/eventbus/internal/testenv"
)

// TestPing: Ping answers on each database, and returns ErrClosed after Close.
func TestPing(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.driver, func(t *testing.T) {
			b := openPinged(t, tg.driver, tg.dsn(t))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := b.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if err := b.Ping(ctx); !errors.Is(err, sqlbackend.ErrClosed) {
				t.Fatalf("Ping after Close = %v, want ErrClosed", err)
			}
		})
	}
}

// TestPingCut: Ping fails, naming the database and not the password, while a proxy
// cuts PostgreSQL off, and answers again after the restore.
func TestPingCut(t *testing.T) {
	dsn := testenv.FreshPostgres(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := tcpproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	u.Host = proxy.Addr()
	b := openPinged(t, "postgres", u.String())
	ping := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return b.Ping(ctx)
	}
	if err := ping(); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	proxy.Cut()
	err = ping()
	if err == nil || !strings.HasPrefix(err.Error(), "sql: postgres at ") {
		t.Fatalf("Ping while cut = %v, want an error naming the database", err)
	}
	if p, ok := u.User.Password(); ok && p != "" && strings.Contains(err.Error(), p) {
		t.Fatalf("Ping error shows the password: %v", err)
	}
	proxy.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for err := ping(); err != nil; err = ping() {
		if time.Now().After(deadline) {
			t.Fatalf("Ping after the restore: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func openPinged(t *testing.T, driver, dsn string) *sqlbackend.Backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	be, err := bus.OpenBackend(ctx, "sql", settings(driver, dsn, "connect_timeout", "1s"), bus.BackendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	return be.(*sqlbackend.Backend)
}
