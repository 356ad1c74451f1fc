// Package sqlbackend is the sql backend of eventbus: it carries messages in tables of a
// PostgreSQL or MySQL/MariaDB database, through watermill-sql v4. Import it (the
// directory is backends/sql, the package name sqlbackend, so that it does not shadow
// database/sql) to register the backend "sql":
//
//	import _ "github.com/go-eventbus/eventbus/backends/sql"
//
//	cfg := bus.Config{
//		Backend: "sql",
//		BackendSettings: map[string]any{
//			"driver": "postgres",
//			"dsn":    "postgres://app@db:5432/app?sslmode=disable",
//		},
//		Store: bus.StoreConfig{Driver: "postgres", DSN: "postgres://app@db:5432/app?sslmode=disable"},
//	}
//
// The backend may share its database with the ModelEvent store: its tables are named
// <table_prefix>messages_<topic> and <table_prefix>offsets_<topic> and never collide with
// the store's.
//
// # Delivery semantics
//
// A published message is a row, committed before Publish returns; it stays in the table
// (nothing is deleted on ack), so it survives restarts of the database and of every
// process. Each consumer name is a watermill-sql consumer group with one offset row per
// topic: every consumer receives every message of the topic, including messages
// published before it first subscribed or while it was stopped. Processes using the
// same consumer name share the group: its offset row is locked while one subscriber
// handles a batch, so the group's messages are handled one at a time, in order, by
// whichever subscriber holds the lock — work moves between processes, it does not run
// in parallel within a group.
//
// A subscriber reads up to batch_size messages in one transaction, hands them over one
// at a time (the next after the previous is acked) and commits the group's offset after
// the batch. A nack delivers the message again after resend_interval. If the
// transaction is lost (the connection cut, the process killed) the whole batch is
// delivered again: delivery is at least once, and the bus records a redelivery as
// another attempt of the same ModelEvent row.
//
// On PostgreSQL, messages are ordered by (transaction id, offset) and a subscriber only
// reads transactions older than every running one, so a message committed late is never
// skipped; a long transaction anywhere in the database delays delivery meanwhile. On
// MySQL and MariaDB the subscriber reads at SERIALIZABLE isolation, which holds a lock on
// the end of the topic's table while a batch is handled: a Publish to that topic waits
// until the batch is committed. A handler must therefore not publish to the topic it
// consumes on MySQL (it would wait for its own batch, until ack_deadline).
//
// There is no delayed delivery and no dead-letter table; the bus's retry and poison
// queue apply as on every backend.
package sqlbackend
