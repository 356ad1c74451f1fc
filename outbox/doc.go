// Package outbox is eventbus's transactional outbox: messages written into a table of
// the application's database inside the application's own transaction, and a relay
// that moves them to the broker once that transaction has committed. A business change
// and its event commit or roll back together.
//
// The table is a watermill-sql queue (PostgreSQL and MySQL/MariaDB through
// watermill-sql's queue adapters, SQLite through this package's own adapter) holding
// Watermill forwarder envelopes. NewTxPublisher writes into it over a *sql.Tx; the
// Relay is Watermill's Forwarder reading it through a watermill-sql subscriber and
// publishing to any Watermill publisher (the bus's backend: memory, Kafka, NATS, AMQP,
// SQL), recording each message's produced ModelEvent as published, then deleting the
// row. Most programs use it through the bus: bus.Outbox and Bus.PublishTx.
//
// # Delivery semantics
//
// At least once: a message whose transaction committed is published until a publish
// succeeds and its row is deleted; a relay stopped or killed in between publishes it
// again. A rolled-back transaction leaves nothing: no row, no message, no ModelEvent.
// The relay publishes one message at a time in the table's order and retries a failed
// publish (with backoff) before going on, so messages go out in commit order per
// object as long as the transactions that change one object also lock its row before
// they publish (see docs/outbox.md); the broker then keeps that order where it orders
// (per partition key on Kafka: the object id of a bus.NewChangeMessage).
//
// Run one relay per outbox table on SQLite. On PostgreSQL and MySQL several relays may
// run: they take turns (the rows of a batch are locked), so order still holds.
package outbox
