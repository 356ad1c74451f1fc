// Package bus is eventbus's publish-subscribe event bus: a thin layer on Watermill that
// chooses the broker by name, records every event as a ModelEvent row in a SQL store
// (package modelevent), retries and poisons failures, and lets consumers be stopped,
// started, retried and replayed from any process (package control) and from the
// console (package admin).
//
// # Life cycle
//
// New builds a Bus from a Config (LoadConfig reads one from YAML or JSON and EVENTBUS_*
// variables); Handle and HandleModel register consumers; Run subscribes them and blocks
// until its context ends; Shutdown(ctx) stops the bus in two phases — it waits for the
// handlers in flight until ctx ends, then cancels their contexts — and flushes every
// row. Close is Shutdown bounded by Config.ShutdownTimeout.
//
// # Publishing
//
// One way, for every kind of event: make messages, then Publish them, or PublishTx
// them inside the caller's SQL transaction (the transactional outbox):
//
//   - NewMessage(payload): any bytes;
//   - NewModelMessage(v): v as JSON, with its model name (ModelName);
//   - NewChangeMessage(v, objectID, change): a model change, whose object id and change
//     become columns of the rows and whose object id is the partition key.
//
// Publish returns once the backend accepted the messages and, with durable recording,
// their produced rows are stored. A context already done publishes nothing.
//
// # Handling
//
// Handle registers a HandlerFunc on the raw Watermill message; HandleModel[T] decodes
// the JSON payload into a T and receives only T's model. Both run inside the chain
// poison queue → recording → retry → timeout → panic recovery, so a handler that fails
// N times then succeeds leaves one succeeded row with N+1 attempts, and one that always
// fails ends poisoned, its message on the poison topic. A handler's context carries the
// correlation id (Publish with it to continue the flow) and the Delivery
// (DeliveryFromContext: message UUID, model change, attempt); it is cancelled only by
// Shutdown's second phase.
//
// # Delivery semantics
//
// At least once: a message is acked after its handler returned and, with durable
// recording (the default), after its row is stored; a redelivery updates the same row.
// Each consumer receives every message of its topic; processes running the same
// consumer name share its messages where the broker has consumer groups.
package bus
