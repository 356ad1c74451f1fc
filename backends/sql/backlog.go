package sqlbackend

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/go-eventbus/eventbus/bus"
)

var _ bus.Backlogger = (*Backend)(nil)

// Backlog returns the number of messages of topic after consumer's acked offset: the
// messages its consumer group has not acked yet, including one being handled now. A
// consumer that never subscribed has every stored message of the topic waiting; a topic
// whose table does not exist has none.
func (b *Backend) Backlog(ctx context.Context, consumer, topic string) (int64, error) {
	if err := validTopic(topic); err != nil {
		return 0, fmt.Errorf("sql: backlog %q: %w", topic, err)
	}
	msgs := b.tables.quote(b.tables.messages(topic))
	offs := b.tables.quote(b.tables.offsets(topic))
	var q string
	switch b.cfg.Driver {
	case DriverPostgres:
		// The order of messages is (transaction_id, offset), as watermill-sql reads them.
		q = `SELECT count(*) FROM ` + msgs + ` m
			LEFT JOIN (SELECT offset_acked, last_processed_transaction_id FROM ` + offs + ` WHERE consumer_group = $1) o ON true
			WHERE o.last_processed_transaction_id IS NULL
			   OR m.transaction_id > o.last_processed_transaction_id
			   OR (m.transaction_id = o.last_processed_transaction_id AND m."offset" > COALESCE(o.offset_acked, 0))`
	default:
		q = "SELECT COUNT(*) FROM " + msgs + " WHERE `offset` > COALESCE((SELECT offset_acked FROM " + offs + " WHERE consumer_group = ?), 0)"
	}
	n, err := b.count(ctx, q, b.ConsumerGroup(consumer))
	if missingTable(err) {
		// No offsets table yet (only publishers used the topic): everything waits.
		n, err = b.count(ctx, "SELECT COUNT(*) FROM "+msgs)
		if missingTable(err) {
			return 0, nil
		}
	}
	if err != nil {
		return 0, fmt.Errorf("sql: backlog of consumer %s on %q: %w", consumer, topic, err)
	}
	return n, nil
}

// count runs a query returning one number.
func (b *Backend) count(ctx context.Context, q string, args ...any) (int64, error) {
	rows, err := b.db.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, err
		}
	}
	if r, ok := rows.(interface{ Err() error }); ok && r.Err() != nil {
		return 0, r.Err()
	}
	return n, nil
}

// missingTable reports whether err says a table does not exist.
func missingTable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "42P01" // undefined_table
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return myErr.Number == 1146 // ER_NO_SUCH_TABLE
	}
	return false
}
