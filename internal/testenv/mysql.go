package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	// The store driver of the database FreshMySQL provides, so that a test opening a
	// store (store.driver mysql) on it needs no import of its own.
	_ "github.com/go-eventbus/eventbus/modelevent/mysql"
)

// FreshMySQL creates a new database on the test MySQL/MariaDB server, drops it when the
// test ends, and returns a DSN naming it. It skips (or fails, under
// EVENTBUS_REQUIRE_SERVICES=1) when the server is unreachable.
func FreshMySQL(t testing.TB) string {
	t.Helper()
	base := MySQLDSN()
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvVar("mysql"), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin, err := sql.Open("mysql", base)
	if err == nil {
		err = admin.PingContext(ctx)
	}
	RequireService(t, "mysql", err)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "eventbus_t_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP DATABASE " + name)
		_ = admin.Close()
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}
