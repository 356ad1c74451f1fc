package modelevent

import (
	"context"
	"database/sql"
	"time"
)

// The capability interfaces of scheduled work and idempotency (migration 0006): the bus
// and its middleware depend on these, never on *SQLStore, so a store that wraps a
// SQLStore keeps scheduled retries, delayed publishing and idempotent consumers working
// as long as it forwards these methods (embedding the *SQLStore does), as with the
// interfaces of capability.go.
var (
	_ Scheduler  = (*SQLStore)(nil)
	_ RunClaimer = (*SQLStore)(nil)
)

// Scheduler keeps the schedule of retries and delayed publishes (eventbus_schedule).
type Scheduler interface {
	// Schedule adds e to the schedule, or replaces the entry of its message and
	// consumer.
	Schedule(ctx context.Context, e Scheduled) error
	// ScheduleTx is Schedule inside the caller's transaction.
	ScheduleTx(ctx context.Context, tx *sql.Tx, e Scheduled) error
	// ClaimDue claims, for holder, entries due now: up to maxPublishes delayed
	// publishes and up to maxRetries retries of consumers, for claimFor.
	ClaimDue(ctx context.Context, holder string, consumers []string, maxPublishes, maxRetries int, claimFor time.Duration) (claimed []Scheduled, contended bool, err error)
	// Requeue gives holder's claimed entry back, due at next, with its attempts and
	// last error.
	Requeue(ctx context.Context, messageUUID, consumer, holder string, next time.Time, attempts int, lastError string) error
	// Unschedule removes the entry of (messageUUID, consumer): with a holder only
	// while holder holds it, with "" whoever holds it.
	Unschedule(ctx context.Context, messageUUID, consumer, holder string) error
	// UnscheduleMany removes the entries of keys ((message UUID, consumer) pairs)
	// that holder holds.
	UnscheduleMany(ctx context.Context, keys [][2]string, holder string) error
	// GetMany returns the rows of ids.
	GetMany(ctx context.Context, ids []string) ([]ModelEvent, error)
	// Reschedule makes the unclaimed entry of (messageUUID, consumer) due at at.
	Reschedule(ctx context.Context, messageUUID, consumer string, at time.Time) error
	// GetScheduled returns the entry of a message and consumer.
	GetScheduled(ctx context.Context, messageUUID, consumer string) (Scheduled, error)
	// ListScheduled lists entries of kind (every kind when empty), soonest due first.
	ListScheduled(ctx context.Context, kind ScheduleKind, limit int) ([]Scheduled, error)
	// CancelScheduled removes the entry and ends its row: cancelled for a delayed
	// publish, failed for a retry.
	CancelScheduled(ctx context.Context, messageUUID, consumer string) error
}

// RunClaimer checks and claims the runs of idempotent consumers (eventbus_claims) and
// counts their duplicate deliveries.
type RunClaimer interface {
	// CheckAndClaimMany returns, for each run, its consumed row's status and whether
	// its holder now holds the claim to run it.
	CheckAndClaimMany(ctx context.Context, keys []RunKey, ttl time.Duration) ([]RunClaim, error)
	// ConsumedStatus returns the status of the consumed row of (messageUUID, handler),
	// and false when there is none.
	ConsumedStatus(ctx context.Context, messageUUID, handler string) (Status, bool, error)
	// ReleaseRun removes holder's claim on the run.
	ReleaseRun(ctx context.Context, messageUUID, handler, holder string) error
	// AddDuplicate counts one duplicate delivery on the consumed row.
	AddDuplicate(ctx context.Context, messageUUID, handler string) error
	// PruneClaims deletes up to limit claims that lapsed before olderThan ago.
	PruneClaims(ctx context.Context, olderThan time.Duration, limit int) (int64, error)
}
