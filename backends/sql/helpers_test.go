package sqlbackend_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/go-eventbus/eventbus/internal/testenv"
)

// isolatedName returns a lower-case name unique to this run, for a schema or database.
func isolatedName() string {
	return "eb_" + strings.ToLower(watermill.NewShortUUID())
}

// postgresDSN creates a schema of its own for t and returns the test DSN with its
// search_path set to it; the schema is dropped at cleanup.
func postgresDSN(t testing.TB) string {
	t.Helper()
	base := testenv.PostgresDSN()
	db, err := sql.Open("pgx", base)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
	}
	testenv.RequireService(t, "postgres", err)
	schema := isolatedName()
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		_ = db.Close()
	})
	return withSearchPath(t, base, schema)
}

func withSearchPath(t testing.TB, dsn, schema string) string {
	t.Helper()
	if !strings.Contains(dsn, "://") {
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse postgres dsn: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// mysqlDSN creates a database of its own for t and returns a DSN on it; the database
// is dropped at cleanup.
func mysqlDSN(t testing.TB) string {
	t.Helper()
	base := testenv.MySQLDSN()
	db, err := sql.Open("mysql", base)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
	}
	testenv.RequireService(t, "mysql", err)
	name := isolatedName()
	if _, err := db.Exec("CREATE DATABASE `" + name + "`"); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec("DROP DATABASE `" + name + "`"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		_ = db.Close()
	})
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("parse mysql dsn: %v", err)
	}
	cfg.DBName = name
	return cfg.FormatDSN()
}

// target is one database the tests run on.
type target struct {
	driver string
	dsn    func(testing.TB) string
}

var targets = []target{
	{driver: "postgres", dsn: postgresDSN},
	{driver: "mysql", dsn: mysqlDSN},
}

// settings returns backend_settings for driver and dsn, fast polling for tests.
func settings(driver, dsn string, extra ...any) map[string]any {
	s := map[string]any{
		"driver":          driver,
		"dsn":             dsn,
		"poll_interval":   "10ms",
		"resend_interval": "50ms",
		"retry_interval":  "100ms",
		"connect_timeout": "5s",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		s[fmt.Sprint(extra[i])] = extra[i+1]
	}
	return s
}
