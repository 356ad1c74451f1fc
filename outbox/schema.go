package outbox

import (
	"context"
	stdsql "database/sql"
	"fmt"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"

	"github.com/go-eventbus/eventbus/modelevent"
)

// newAdapters returns the watermill-sql schema and offsets adapters of cfg's outbox
// table: a queue (no consumer groups) whose rows are deleted once forwarded.
//
// PostgreSQL and MySQL use watermill-sql's queue adapters (PostgreSQLQueueSchema,
// MySQLQueueSchema with DeleteOnAck), changed in three ways: the table is created with
// a 64-character uuid and binary payload; the relay reads at READ COMMITTED, so its
// open batch never blocks the inserts of application transactions (upstream reads
// MySQL at SERIALIZABLE, whose gap locks would make every PublishTx wait for the
// relay's batch); and the ack deletes only the rows that were forwarded (upstream acks
// the whole batch, which loses the rest when the relay stops half-way). SQLite uses
// sqliteAdapter.
func newAdapters(cfg Config) (wsql.SchemaAdapter, wsql.OffsetsAdapter) {
	switch cfg.Dialect {
	case modelevent.DialectPostgres:
		name := func(string) string { return `"` + cfg.Table + `"` }
		return postgresSchema{
				PostgreSQLQueueSchema: wsql.PostgreSQLQueueSchema{
					GenerateMessagesTableName: name,
					GeneratePayloadType:       func(string) string { return "BYTEA" },
					SubscribeBatchSize:        cfg.BatchSize,
				},
				table: cfg.Table,
			}, ackForwarded{
				OffsetsAdapter: wsql.PostgreSQLQueueOffsetsAdapter{DeleteOnAck: true, GenerateMessagesTableName: name},
			}
	case modelevent.DialectMySQL:
		name := func(string) string { return "`" + cfg.Table + "`" }
		return mysqlSchema{
				MySQLQueueSchema: wsql.MySQLQueueSchema{
					GenerateMessagesTableName: name,
					GeneratePayloadType:       func(string) string { return "LONGBLOB" },
					SubscribeBatchSize:        cfg.BatchSize,
				},
				table: cfg.Table,
			}, ackForwarded{
				OffsetsAdapter: wsql.MySQLQueueOffsetsAdapter{DeleteOnAck: true, GenerateMessagesTableName: name},
			}
	}
	table := `"` + cfg.Table + `"`
	return sqliteSchema{table: table, batch: cfg.BatchSize}, ackForwarded{OffsetsAdapter: sqliteOffsets{table: table}}
}

// ackForwarded is an offsets adapter that acks only the rows of a batch that were
// forwarded: watermill-sql passes the whole batch, and the queue adapters would delete
// the rest of it when the relay stops half-way.
type ackForwarded struct {
	wsql.OffsetsAdapter
}

func (a ackForwarded) AckMessageQuery(p wsql.AckMessageQueryParams) (wsql.Query, error) {
	return a.OffsetsAdapter.AckMessageQuery(forwarded(p))
}

// forwarded returns the rows of a batch up to and including the last one forwarded.
func forwarded(p wsql.AckMessageQueryParams) wsql.AckMessageQueryParams {
	rows := make([]wsql.Row, 0, len(p.Rows))
	for _, r := range p.Rows {
		if r.Offset <= p.LastRow.Offset {
			rows = append(rows, r)
		}
	}
	p.Rows = rows
	return p
}

// postgresSchema is watermill-sql's PostgreSQL queue schema for the outbox table.
type postgresSchema struct {
	wsql.PostgreSQLQueueSchema
	table string
}

func (a postgresSchema) SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return []wsql.Query{
		// Serializes concurrent CREATE TABLE IF NOT EXISTS, which PostgreSQL does not.
		{Query: `SELECT pg_advisory_xact_lock(hashtext('eventbus_outbox.' || current_schema() || '.' || $1))`, Args: []any{a.table}},
		{Query: `CREATE TABLE IF NOT EXISTS "` + a.table + `" (
			"offset"     BIGSERIAL    PRIMARY KEY,
			"uuid"       VARCHAR(64)  NOT NULL,
			"payload"    BYTEA        DEFAULT NULL,
			"metadata"   JSON         DEFAULT NULL,
			"acked"      BOOLEAN      NOT NULL DEFAULT FALSE,
			"created_at" TIMESTAMPTZ  NOT NULL DEFAULT CURRENT_TIMESTAMP
		)`},
	}, nil
}

func (postgresSchema) SubscribeIsolationLevel() stdsql.IsolationLevel {
	return stdsql.LevelReadCommitted
}

// mysqlSchema is watermill-sql's MySQL queue schema for the outbox table.
type mysqlSchema struct {
	wsql.MySQLQueueSchema
	table string
}

func (a mysqlSchema) SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return []wsql.Query{{Query: "CREATE TABLE IF NOT EXISTS `" + a.table + "` (" +
		"`offset`     BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY," +
		"`uuid`       VARCHAR(64) NOT NULL," +
		"`payload`    LONGBLOB    DEFAULT NULL," +
		"`metadata`   JSON        DEFAULT NULL," +
		"`acked`      BOOLEAN     NOT NULL DEFAULT FALSE," +
		"`created_at` TIMESTAMP   NOT NULL DEFAULT CURRENT_TIMESTAMP" +
		") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"}}, nil
}

// SubscribeIsolationLevel is READ COMMITTED: the relay's SELECT … FOR UPDATE locks the
// rows it reads and no gap, so inserts are never blocked; a locking read still waits for
// a row inserted by a transaction not yet committed, so rows go out in commit order.
func (mysqlSchema) SubscribeIsolationLevel() stdsql.IsolationLevel {
	return stdsql.LevelReadCommitted
}

// InitializeSchema creates the outbox table of cfg in db if it does not exist. It is
// idempotent and safe to run from several processes at once. NewRelay runs it; call it
// yourself (or create the table by hand, see docs/outbox.md) when the first PublishTx
// may come before the relay starts.
func InitializeSchema(ctx context.Context, db *stdsql.DB, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if db == nil {
		return fmt.Errorf("outbox: initialize %s: nil *sql.DB", cfg.Table)
	}
	schema, _ := newAdapters(cfg)
	qs, err := schema.SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams{Topic: cfg.Table})
	if err != nil {
		return fmt.Errorf("outbox: initialize %s: %w", cfg.Table, err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("outbox: initialize %s: %w", cfg.Table, err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, q := range qs {
		if _, err := tx.ExecContext(ctx, q.Query, q.Args...); err != nil {
			return fmt.Errorf("outbox: initialize %s: %w", cfg.Table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox: initialize %s: %w", cfg.Table, err)
	}
	return nil
}
