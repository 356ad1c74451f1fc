// Package sqlite registers the SQLite store driver (modernc.org/sqlite, pure Go, no cgo)
// under the name "sqlite". Package bus imports it, since SQLite is the embedded default
// store; a program that opens a SQLite store through modelevent alone imports it for its
// side effect:
//
//	import _ "github.com/go-eventbus/eventbus/modelevent/sqlite"
//
//	store, err := modelevent.Open(ctx, "sqlite", "file:eventbus.db")
//
// The DSN is a path or a "file:" URI. The store adds, unless the DSN sets them: WAL
// journal, synchronous NORMAL, a 5s busy timeout, foreign keys, a larger WAL checkpoint,
// temporary tables in memory and immediate transactions (writers wait on the busy
// timeout instead of failing on a lock upgrade). An in-memory database (":memory:",
// mode=memory) gets a single connection, since each connection would be a database of
// its own.
package sqlite

import (
	"database/sql"
	"errors"
	"strings"

	"modernc.org/sqlite"

	"github.com/go-eventbus/eventbus/modelevent/internal/driver"
)

func init() {
	driver.Register("sqlite", storeDriver{})
}

// storeDriver is the SQLite store driver.
type storeDriver struct{}

// Open returns a handle on the SQLite database at dsn with the store's settings added.
func (storeDriver) Open(dsn string) (*sql.DB, error) {
	full, inMemory := withSettings(dsn)
	db, err := sql.Open("sqlite", full)
	if err != nil {
		return nil, err
	}
	if inMemory {
		// Each connection to ":memory:" is a database of its own.
		db.SetMaxOpenConns(1)
	}
	return db, nil
}

// IsDataError reports whether err is SQLite refusing a row: SQLITE_TOOBIG,
// SQLITE_CONSTRAINT or SQLITE_MISMATCH.
func (storeDriver) IsDataError(err error) bool {
	var liteErr *sqlite.Error
	if !errors.As(err, &liteErr) {
		return false
	}
	switch liteErr.Code() & 0xff {
	case 18, // SQLITE_TOOBIG
		19, // SQLITE_CONSTRAINT
		20: // SQLITE_MISMATCH
		return true
	}
	return false
}

// withSettings returns dsn with the settings the store relies on added where dsn lacks
// them (see the package documentation), and whether the database lives in memory.
func withSettings(dsn string) (string, bool) {
	lower := strings.ToLower(dsn)
	mem := dsn == "" || strings.HasPrefix(lower, ":memory:") || strings.HasPrefix(lower, "file::memory:") ||
		strings.Contains(lower, "mode=memory")
	has := func(keys ...string) bool {
		for _, k := range keys {
			if strings.Contains(lower, k) {
				return true
			}
		}
		return false
	}
	var add []string
	if !has("busy_timeout", "_timeout=") {
		add = append(add, "_pragma=busy_timeout(5000)")
	}
	if !has("journal_mode", "_journal=") && !mem {
		add = append(add, "_pragma=journal_mode(WAL)")
	}
	if !has("synchronous", "_sync=") {
		add = append(add, "_pragma=synchronous(NORMAL)")
	}
	if !has("wal_autocheckpoint") && !mem {
		// Fewer, larger checkpoints: a page rewritten by many commits is copied back
		// (and synced) once per checkpoint instead of once per 1000 WAL pages.
		add = append(add, "_pragma=wal_autocheckpoint(8000)")
	}
	if !has("temp_store") {
		// Upserts inside a transaction keep a statement journal; in memory it costs no
		// write syscalls.
		add = append(add, "_pragma=temp_store(MEMORY)")
	}
	if !has("foreign_keys", "_fk=") {
		add = append(add, "_pragma=foreign_keys(1)")
	}
	if !has("_txlock=") {
		add = append(add, "_txlock=immediate")
	}
	if len(add) == 0 {
		return dsn, mem
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	if dsn == "" {
		dsn = ":memory:"
	}
	return dsn + sep + strings.Join(add, "&"), mem
}
