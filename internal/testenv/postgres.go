package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	// The store driver of the database FreshPostgres provides, so that a test opening
	// a store (store.driver postgres) on it needs no import of its own.
	_ "github.com/go-eventbus/eventbus/modelevent/postgres"
)

// FreshPostgres creates a new schema on the test PostgreSQL server, drops it when the
// test ends, and returns a DSN whose search_path is that schema. It skips (or fails,
// under EVENTBUS_REQUIRE_SERVICES=1) when the server is unreachable.
func FreshPostgres(t testing.TB) string {
	t.Helper()
	base := PostgresDSN()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin, err := sql.Open("pgx", base)
	if err == nil {
		err = admin.PingContext(ctx)
	}
	RequireService(t, "postgres", err)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "eventbus_t_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		_ = admin.Close()
	})
	if strings.Contains(base, "://") {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatalf("parse %s: %v", EnvVar("postgres"), err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return base + " search_path=" + schema
}
