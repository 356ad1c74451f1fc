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
// sessions get the settings of SessionDefaults that the DSN does not set itself (as a
// runtime parameter or in options).
package postgres

import (
	"database/sql"
	"errors"
	"strings"

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

// SessionDefaults are the server settings of the store's own sessions, unless the DSN
// sets them. Each bounds how long a session whose client is gone (a process cut off by a
// network partition, a host that died) keeps its transaction and the row locks it
// holds: without them the server keeps both until TCP gives up, minutes to hours
// later, and every other process that writes one of those rows (a redelivery of the
// same message on another host) waits for it.
//
//   - idle_in_transaction_session_timeout: the store's transactions send their
//     statements back to back, so a session idle inside one for 5 s has lost its client
//     (cut between its INSERT and its COMMIT).
//   - tcp_keepalives_idle, _interval, _count: the server probes a silent client after 5 s
//     and drops it after 3 unanswered probes 1 s apart, also while it waits for the rest
//     of a statement that was cut in the middle, which the idle timeout does not cover.
//   - tcp_user_timeout: a send to the client that is not acknowledged within 10 s ends
//     the session (a result written to a host that is gone).
//
// The TCP settings apply to TCP connections only; on a Unix socket the server ignores them.
var SessionDefaults = map[string]string{
	"idle_in_transaction_session_timeout": "5s",
	"tcp_keepalives_idle":                 "5",
	"tcp_keepalives_interval":             "1",
	"tcp_keepalives_count":                "3",
	"tcp_user_timeout":                    "10000",
}

// Open returns a handle on the PostgreSQL database at dsn, its sessions with the
// SessionDefaults that dsn does not set.
func (storeDriver) Open(dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	// A parameter in the startup packet overrides the same one in options (-c k=v), so
	// a default is added only when neither has it.
	options := cfg.RuntimeParams["options"]
	for k, v := range SessionDefaults {
		if _, ok := cfg.RuntimeParams[k]; !ok && !strings.Contains(options, k+"=") {
			cfg.RuntimeParams[k] = v
		}
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
