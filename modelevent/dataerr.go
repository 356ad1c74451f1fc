package modelevent

import (
	"errors"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// isDataError reports whether err is the database refusing a row for its data (a
// constraint, a value it cannot hold) rather than failing to run the statement at all
// (unreachable, a lock, a timeout): the kind of error that one row of a batch causes
// and that writing the row again would cause again.
func (d *dialect) isDataError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "22", // data exception: too long, invalid encoding, out of range
			"23", // integrity constraint violation
			"54": // program limit exceeded: an index row too large
			return true
		}
		return false
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() & 0xff {
		case 18, // SQLITE_TOOBIG
			19, // SQLITE_CONSTRAINT
			20: // SQLITE_MISMATCH
			return true
		}
		return false
	}
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
