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
// The DSN is a pgx URL or keyword/value string, used as it is.
package postgres

import (
	"database/sql"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/go-eventbus/eventbus/modelevent/internal/driver"
)

func init() {
	driver.Register("postgres", storeDriver{})
}

// storeDriver is the PostgreSQL store driver.
type storeDriver struct{}

// Open returns a handle on the PostgreSQL database at dsn.
func (storeDriver) Open(dsn string) (*sql.DB, error) {
	return sql.Open("pgx", dsn)
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
