// Package modelevent defines the ModelEvent — the audit record of one message in one
// direction for one handler — and the Store that keeps them, with its SQL
// implementation.
//
// # The record
//
// A produced message has one row; a consumed message has one row per handler. The row
// is identified by a ULID (so ids sort by creation time) and is unique on (MessageUUID,
// Direction, Handler): a redelivery updates the row — Attempts grows, Status and
// UpdatedAt are replaced, LastError is replaced only by a non-empty error and so
// survives a later success — and each attempt is kept as an Attempt in the row's
// History.
//
// # The SQL store
//
// Open returns a SQLStore on SQLite (modernc.org/sqlite, pure Go, the embedded
// default), PostgreSQL (pgx) or MySQL/MariaDB (go-sql-driver), each linked by a blank
// import of its driver package, as database/sql drivers are, so a program links only
// the database drivers it uses:
//
//	import _ "github.com/go-eventbus/eventbus/modelevent/sqlite"   // package bus imports it
//	import _ "github.com/go-eventbus/eventbus/modelevent/postgres" // pgx
//	import _ "github.com/go-eventbus/eventbus/modelevent/mysql"    // go-sql-driver, MySQL and MariaDB
//
// NewSQLStore wraps a *sql.DB the caller owns, opened with any driver. Migrate applies the versioned schema migrations embedded in
// the binary (migrations/<dialect>/NNNN_name.sql) and is safe to run from several
// processes at once; MigrationStatus reports them.
//
// Write is the recording hot path. It applies a batch of Changes in one transaction:
// changes to the same row are merged first, then every row goes out in one multi-row
// upsert and every attempt in one multi-row insert, so a batch costs a few statements
// whatever its size. Either the whole batch is stored or none of it.
//
// List pages newest first with an opaque cursor and never repeats or skips a row;
// every Filter field is an indexed condition except Text, a case-sensitive substring
// match over the id, message UUID, payload bytes and last error. Stats counts by status
// and by topic and direction.
//
// Times are stored as unix microseconds UTC, so they round-trip at microsecond
// precision and come back in UTC.
package modelevent
