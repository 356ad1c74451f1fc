package modelevent

import (
	"context"
	"database/sql"
	"time"
)

// The capability interfaces below are the parts of SQLStore that the bus's control
// plane, transactional outbox and retention need beyond Store. They depend on these,
// never on *SQLStore, so a store that wraps a SQLStore (to count, trace or limit its
// calls) keeps them working as long as it forwards these methods — embedding the
// *SQLStore does.
var (
	_ SQLDatabase = (*SQLStore)(nil)
	_ TxWriter    = (*SQLStore)(nil)
	_ Pruner      = (*SQLStore)(nil)
	_ Leaser      = (*SQLStore)(nil)
)

// SQLDatabase is a store kept in a SQL database: the control plane's tables and, by
// default, the outbox table live in the same database.
type SQLDatabase interface {
	// DB returns the database handle. The caller must not close it.
	DB() *sql.DB
	// Dialect returns the database's dialect: DialectSQLite, DialectPostgres or
	// DialectMySQL.
	Dialect() string
}

// TxWriter writes changes inside the caller's transaction, so that they commit or roll
// back with it (the outbox's PublishTx with record tx).
type TxWriter interface {
	// WriteTx applies changes in tx, as Store.Write does in its own transaction.
	WriteTx(ctx context.Context, tx *sql.Tx, changes []Change) error
}

// Pruner deletes old rows in batches (retention).
type Pruner interface {
	// Prune deletes the rows opts selects and reports what it deleted.
	Prune(ctx context.Context, opts PruneOptions) (PruneResult, error)
}

// Leaser keeps named, expiring leases, so that one process of many does a job (the
// pruning).
type Leaser interface {
	// AcquireLease takes or renews the lease name for holder for ttl, storing info with
	// it; it reports whether holder holds the lease now.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, info string) (bool, error)
	// ReleaseLease gives up holder's lease name, if held.
	ReleaseLease(ctx context.Context, name, holder string) error
	// GetLease returns the lease name as stored.
	GetLease(ctx context.Context, name string) (Lease, error)
}
