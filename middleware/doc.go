// Package middleware records events as ModelEvents and holds the retry and poison-queue
// policy of eventbus, as plain Watermill middleware.
//
// The pieces compose, outermost first, into the chain every bus handler runs:
//
//	poison queue → [ScheduleRetries, Idempotent] → recording → retry (exponential backoff) → attempt → timeout → panic recovery → handler
//
// ScheduleRetries (RetryScheduled mode) acks a message that still fails after its inline
// tries and keeps its retry in the store's schedule; Idempotent acks a delivery whose
// row already succeeded without running the handler (docs/retries.md). Both are
// optional (Chain.Outer).
//
// Chain builds that chain and can be added to any Watermill router with
// Router.AddMiddleware, so a raw Watermill handler gets the same recording, retries and
// poison queue as a bus handler.
//
// Delivery semantics: a message is acked only after its outcome is handed to the
// Recorder; in RecordDurable mode only after the row is stored. A store error nacks the
// message (it is redelivered, never poisoned), so no acked message goes unrecorded in
// durable mode, and in buffered mode at most the rows of one flush interval are lost on a
// crash — never a message.
package middleware
