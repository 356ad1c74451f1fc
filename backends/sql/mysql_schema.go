package sqlbackend

import (
	stdsql "database/sql"
	"encoding/json"
	"fmt"
	"strings"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
)

// mysqlSchema is watermill-sql's DefaultMySQLSchema with publishers serialized per topic
// instead of subscribers reading at SERIALIZABLE isolation.
//
// Offsets are AUTO_INCREMENT values, taken when a row is inserted, not when it is
// committed: if two publishers commit out of order, a subscriber could see offset 11,
// ack it, and never read offset 10. Upstream prevents that by reading at SERIALIZABLE,
// whose next-key locks make the subscriber wait for uncommitted inserts — and make every
// insert into the topic wait for every subscriber's open batch, for as long as its
// handlers run (measured: a Publish waiting 30 s, until the ack deadline, behind one
// slow handler; a handler publishing to its own topic deadlocks).
//
// Here each insert instead locks the topic's row of the publish_locks table (INSERT …
// SELECT … FOR UPDATE, one statement, so it also works inside a caller's transaction)
// and holds it until it commits: offsets are taken in commit order, a subscriber at
// REPEATABLE READ never sees a later offset before an earlier one, and reading takes no
// lock on the messages table. Subscribers of one group still serialize on their offset
// row (SELECT … FOR UPDATE), as upstream.
type mysqlSchema struct {
	wsql.DefaultMySQLSchema
	// locks is the quoted name of the publish locks table.
	locks string
}

// SchemaInitializingQueries creates the messages table (uuid widened), the publish
// locks table and the topic's lock row.
func (s mysqlSchema) SchemaInitializingQueries(params wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	q, err := s.DefaultMySQLSchema.SchemaInitializingQueries(params)
	if err != nil {
		return nil, err
	}
	q, err = widenUUID(q, "`uuid` VARCHAR(36)", "`uuid` "+uuidColumn)
	if err != nil {
		return nil, err
	}
	return append(q,
		wsql.Query{Query: "CREATE TABLE IF NOT EXISTS " + s.locks + " (`topic` VARCHAR(255) NOT NULL PRIMARY KEY)"},
		wsql.Query{Query: "INSERT IGNORE INTO " + s.locks + " (`topic`) VALUES (?)", Args: []any{params.Topic}},
	), nil
}

// InsertQuery inserts the messages in order while holding the topic's publish lock.
// If the lock row is missing (tables made by hand without it) the rows are still
// inserted, without the lock.
func (s mysqlSchema) InsertQuery(params wsql.InsertQueryParams) (wsql.Query, error) {
	if len(params.Msgs) == 0 {
		return wsql.Query{}, fmt.Errorf("insert into %q: no messages", params.Topic)
	}
	var rows strings.Builder
	args := make([]any, 0, 3*len(params.Msgs)+1)
	for i, m := range params.Msgs {
		md, err := json.Marshal(m.Metadata)
		if err != nil {
			return wsql.Query{}, fmt.Errorf("encode metadata of message %s: %w", m.UUID, err)
		}
		if i == 0 {
			rows.WriteString("SELECT 0 AS s, ? AS u, ? AS p, ? AS m")
		} else {
			fmt.Fprintf(&rows, " UNION ALL SELECT %d, ?, ?, ?", i)
		}
		args = append(args, m.UUID, []byte(m.Payload), string(md))
	}
	args = append(args, params.Topic)
	q := "INSERT INTO " + s.MessagesTable(params.Topic) + " (`uuid`, `payload`, `metadata`)" +
		" SELECT v.u, v.p, v.m FROM (" + rows.String() + ") AS v" +
		" LEFT JOIN " + s.locks + " AS l ON l.`topic` = ?" +
		" ORDER BY v.s FOR UPDATE"
	return wsql.Query{Query: q, Args: args}, nil
}

// SubscribeIsolationLevel is REPEATABLE READ: with publishers serialized, a consistent
// read never skips a message, and gap locks on the offsets table still stop two new
// subscribers of one group from both reading from the start.
func (s mysqlSchema) SubscribeIsolationLevel() stdsql.IsolationLevel {
	return stdsql.LevelRepeatableRead
}
