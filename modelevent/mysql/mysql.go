// Package mysql registers the MySQL and MariaDB store driver
// (github.com/go-sql-driver/mysql) under the name "mysql". Import it for its side effect
// in a program whose store is MySQL or MariaDB:
//
//	import _ "github.com/go-eventbus/eventbus/modelevent/mysql"
//
//	store:
//	  driver: mysql
//	  dsn: app:secret@tcp(db:3306)/app
//
// The DSN is a go-sql-driver DSN; the store turns parseTime on and, unless the DSN sets
// interpolateParams, client-side parameter interpolation (one round trip per statement
// instead of prepare, execute, close).
package mysql

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/go-eventbus/eventbus/modelevent/internal/driver"
)

func init() {
	driver.Register("mysql", storeDriver{})
}

// storeDriver is the MySQL and MariaDB store driver.
type storeDriver struct{}

// Open returns a handle on the MySQL or MariaDB database at dsn with the store's
// settings added.
func (storeDriver) Open(dsn string) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse mysql dsn: %w", err)
	}
	cfg.ParseTime = true
	if !strings.Contains(dsn, "interpolateParams=") {
		cfg.InterpolateParams = true
	}
	return sql.Open("mysql", cfg.FormatDSN())
}

// IsDataError reports whether err is MySQL or MariaDB refusing a row: a NULL, duplicate,
// out-of-range, truncated, incorrect or too long value, a foreign key or check
// constraint, or a packet larger than max_allowed_packet.
func (storeDriver) IsDataError(err error) bool {
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		switch myErr.Number {
		case 1048, // column cannot be null
			1062, // duplicate entry
			1264, // out of range
			1265, // data truncated
			1292, // incorrect value
			1366, // incorrect string value
			1406, // data too long
			1452, // foreign key
			3819, // MySQL: check constraint violated
			4025: // MariaDB: constraint failed
			return true
		}
		return false
	}
	return errors.Is(err, mysql.ErrPktTooLarge)
}
