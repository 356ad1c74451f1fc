package outbox

import (
	"context"
	stdsql "database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// sqliteSchema is the SchemaAdapter of an outbox table on SQLite, which watermill-sql
// does not support. SQLite has one writer at a time, so offsets (AUTOINCREMENT) are
// taken in commit order and the queue needs no locking read: the relay selects the
// oldest rows, forwards them and deletes them (sqliteOffsets).
type sqliteSchema struct {
	table string // quoted
	batch int
}

// sqliteOffsets is the OffsetsAdapter of an outbox table on SQLite: an ack deletes the
// rows.
type sqliteOffsets struct {
	table string // quoted
}

func (a sqliteSchema) SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return []wsql.Query{{Query: `CREATE TABLE IF NOT EXISTS ` + a.table + ` (
		"offset"     INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
		"uuid"       TEXT    NOT NULL,
		"payload"    BLOB,
		"metadata"   TEXT,
		"acked"      INTEGER NOT NULL DEFAULT 0,
		"created_at" INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
	)`}}, nil
}

func (a sqliteSchema) InsertQuery(p wsql.InsertQueryParams) (wsql.Query, error) {
	if len(p.Msgs) == 0 {
		return wsql.Query{}, fmt.Errorf("insert into %s: no messages", a.table)
	}
	args := make([]any, 0, 3*len(p.Msgs))
	for _, m := range p.Msgs {
		md, err := json.Marshal(m.Metadata)
		if err != nil {
			return wsql.Query{}, fmt.Errorf("encode metadata of message %s: %w", m.UUID, err)
		}
		args = append(args, m.UUID, []byte(m.Payload), string(md))
	}
	q := `INSERT INTO ` + a.table + ` ("uuid", "payload", "metadata") VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(p.Msgs)), ", ")
	return wsql.Query{Query: q, Args: args}, nil
}

func (a sqliteSchema) SelectQuery(p wsql.SelectQueryParams) (wsql.Query, error) {
	if p.ConsumerGroup != "" {
		return wsql.Query{}, fmt.Errorf("outbox table %s has no consumer groups (got %q)", a.table, p.ConsumerGroup)
	}
	return wsql.Query{Query: `SELECT "offset", "uuid", "payload", "metadata" FROM ` + a.table +
		` ORDER BY "offset" LIMIT ` + strconv.Itoa(a.batch)}, nil
}

func (a sqliteSchema) UnmarshalMessage(p wsql.UnmarshalMessageParams) (wsql.Row, error) {
	var r wsql.Row
	var uuid string
	var md stdsql.NullString
	if err := p.Row.Scan(&r.Offset, &uuid, &r.Payload, &md); err != nil {
		return wsql.Row{}, fmt.Errorf("scan outbox row: %w", err)
	}
	r.UUID = []byte(uuid)
	r.Msg = message.NewMessage(uuid, r.Payload)
	if md.Valid && md.String != "" {
		r.Metadata = []byte(md.String)
		if err := json.Unmarshal(r.Metadata, &r.Msg.Metadata); err != nil {
			return wsql.Row{}, fmt.Errorf("decode metadata of outbox row %d: %w", r.Offset, err)
		}
	}
	return r, nil
}

func (sqliteSchema) SubscribeIsolationLevel() stdsql.IsolationLevel { return stdsql.LevelDefault }

func (a sqliteOffsets) AckMessageQuery(p wsql.AckMessageQueryParams) (wsql.Query, error) {
	if len(p.Rows) == 0 {
		return wsql.Query{Query: `SELECT 0`}, nil
	}
	args := make([]any, len(p.Rows))
	for i, r := range p.Rows {
		args[i] = r.Offset
	}
	return wsql.Query{Query: `DELETE FROM ` + a.table + ` WHERE "offset" IN (` +
		strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ") + `)`, Args: args}, nil
}

func (sqliteOffsets) ConsumedMessageQuery(wsql.ConsumedMessageQueryParams) (wsql.Query, error) {
	return wsql.Query{}, nil
}

func (sqliteOffsets) NextOffsetQuery(wsql.NextOffsetQueryParams) (wsql.Query, error) {
	return wsql.Query{}, nil
}

func (sqliteOffsets) SchemaInitializingQueries(wsql.OffsetsSchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return nil, nil
}

func (sqliteOffsets) BeforeSubscribingQueries(wsql.BeforeSubscribingQueriesParams) ([]wsql.Query, error) {
	return nil, nil
}

// autocommit is the watermill-sql Beginner of the relay on SQLite: its "transactions"
// run each statement on its own. watermill-sql's subscriber keeps a transaction open
// while the batch is forwarded; on SQLite that transaction would either hold the write
// lock (BEGIN IMMEDIATE) so that nothing else — the ModelEvent store marking the rows,
// the application's PublishTx — can write meanwhile, or fail at its delete because
// those writes changed its snapshot. Without it, a relay that stops between publishing
// and deleting publishes those rows again: at least once, as on every database.
type autocommit struct {
	db *stdsql.DB
}

func (a autocommit) BeginTx(context.Context, *stdsql.TxOptions) (wsql.Tx, error) { return a, nil }

func (a autocommit) ExecContext(ctx context.Context, q string, args ...any) (wsql.Result, error) {
	return a.db.ExecContext(ctx, q, args...)
}

func (a autocommit) QueryContext(ctx context.Context, q string, args ...any) (wsql.Rows, error) {
	return a.db.QueryContext(ctx, q, args...)
}

func (autocommit) Commit() error   { return nil }
func (autocommit) Rollback() error { return nil }
