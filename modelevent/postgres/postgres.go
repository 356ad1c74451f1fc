// Package postgres registers the PostgreSQL store driver (pgx through its database/sql
// adapter, github.com/jackc/pgx/v5/stdlib) under the name "postgres". Import it for its
// side effect in a program whose store is PostgreSQL:
//
//	import _ "github.com/go-eventbus/eventbus/modelevent/postgres"
//
//	store:
//	  driver: postgres
//	  dsn: postgres://app@db/app
//
// The DSN is a pgx URL or keyword/value string, used as it is, except that the store's
// sessions get idle_in_transaction_session_timeout = IdleInTransactionTimeout unless the
// DSN sets it (options or a runtime parameter).
package postgres

import (
	"database/sql"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/go-eventbus/eventbus/modelevent/internal/driver"
)

func init() {
	driver.Register("postgres", storeDriver{})
}

// storeDriver is the PostgreSQL store driver.
type storeDriver struct{}

// Open returns a handle on the PostgreSQL database at dsn.
// IdleInTransactionTimeout is the store's default of PostgreSQL's
// idle_in_transaction_session_timeout for its own connections (a DSN that sets the
// parameter keeps its value). The store's transactions send their statements back to
// back, so a session idle inside one for this long has lost its client: a process cut
// off by a network partition between its INSERT and its COMMIT. Without the timeout
// the server keeps that transaction, and the row locks it holds, until TCP gives up
// (minutes to hours), and every other process that writes one of those rows (a
// redelivery of the same message) waits for it.
const IdleInTransactionTimeout = "5s"

func (storeDriver) Open(dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	if _, ok := cfg.RuntimeParams["idle_in_transaction_session_timeout"]; !ok {
		cfg.RuntimeParams["idle_in_transaction_session_timeout"] = IdleInTransactionTimeout
	}
	return stdlib.OpenDB(*cfg), nil
}

// IsDataError reports whether err is PostgreSQL refusing a row: SQLSTATE class 22
// (data exception: too long, invalid encoding, out of range), 23 (integrity constraint
// violation) or 54 (program limit exceeded: an index row too large).
func (storeDriver) IsDataError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) < 2 {
		return false
	}
	switch pgErr.Code[:2] {
	case "22", "23", "54":
		return true
	}
	return false
}
