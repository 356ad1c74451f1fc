package sqlbackend

import (
	"fmt"
	"strings"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
)

// uuidColumn is the width of the uuid column: the ModelEvent store's message_uuid
// width, instead of watermill-sql's VARCHAR(36), so any UUID the store accepts fits.
const uuidColumn = "VARCHAR(64)"

// adapters returns the watermill-sql schema and offsets adapters for the driver.
//
// PostgreSQL uses DefaultPostgreSQLSchema with DefaultPostgreSQLOffsetsAdapter: they
// keep one offset row per consumer group (so every consumer sees every message) and
// order messages by (transaction id, offset), reading only transactions older than
// every running one, so a message committed late is never skipped. PostgreSQLQueueSchema
// has no consumer groups and cannot give each consumer every message. MySQL and MariaDB
// use DefaultMySQLSchema with DefaultMySQLOffsetsAdapter, changed by mysqlSchema so that
// publishing never waits for consumers.
func adapters(cfg Config, t tables) (wsql.SchemaAdapter, wsql.OffsetsAdapter, error) {
	switch cfg.Driver {
	case DriverPostgres:
		s := postgresSchema{wsql.DefaultPostgreSQLSchema{
			GenerateMessagesTableName: func(topic string) string { return t.quote(t.messages(topic)) },
			GeneratePayloadType:       func(string) string { return "BYTEA" },
			SubscribeBatchSize:        cfg.BatchSize,
		}}
		o := wsql.DefaultPostgreSQLOffsetsAdapter{
			GenerateMessagesOffsetsTableName: func(topic string) string { return t.quote(t.offsets(topic)) },
		}
		return s, o, nil
	case DriverMySQL:
		s := mysqlSchema{DefaultMySQLSchema: wsql.DefaultMySQLSchema{
			GenerateMessagesTableName: func(topic string) string { return t.quote(t.messages(topic)) },
			GeneratePayloadType:       func(string) string { return "LONGBLOB" },
			SubscribeBatchSize:        cfg.BatchSize,
		}, locks: t.quote(t.publishLocks())}
		o := wsql.DefaultMySQLOffsetsAdapter{
			GenerateMessagesOffsetsTableName: func(topic string) string { return t.quote(t.offsets(topic)) },
		}
		return s, o, nil
	}
	return nil, nil, fmt.Errorf("backend_settings.driver: unknown driver %q (accepted: %s)", cfg.Driver, strings.Join(Drivers, ", "))
}

// postgresSchema is DefaultPostgreSQLSchema with a wider uuid column.
type postgresSchema struct {
	wsql.DefaultPostgreSQLSchema
}

// SchemaInitializingQueries creates the messages table under the advisory lock
// watermill-sql uses, so that concurrent CREATE TABLE IF NOT EXISTS do not collide.
func (s postgresSchema) SchemaInitializingQueries(params wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	q, err := s.DefaultPostgreSQLSchema.SchemaInitializingQueries(params)
	if err != nil {
		return nil, err
	}
	return widenUUID(q, `"uuid" VARCHAR(36)`, `"uuid" `+uuidColumn)
}

// widenUUID replaces the upstream uuid column definition; it fails loudly if upstream
// changed it, rather than silently creating another schema.
func widenUUID(qs []wsql.Query, from, to string) ([]wsql.Query, error) {
	found := false
	out := make([]wsql.Query, len(qs))
	for i, q := range qs {
		if strings.Contains(q.Query, from) {
			q.Query = strings.Replace(q.Query, from, to, 1)
			found = true
		}
		out[i] = q
	}
	if !found {
		return nil, fmt.Errorf("watermill-sql schema has no %s column to widen", from)
	}
	return out, nil
}
