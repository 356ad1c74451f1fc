package modelevent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ScheduleKind says what a scheduled entry does when it is due.
type ScheduleKind string

// The kinds of scheduled entries.
const (
	// ScheduleRetry runs a consumer again on a consumed message (a scheduled retry).
	ScheduleRetry ScheduleKind = "retry"
	// SchedulePublish publishes a produced row in status scheduled (a delayed publish).
	SchedulePublish ScheduleKind = "publish"
)

// Scheduled is an entry of the store's schedule (table eventbus_schedule, migration
// 0006): work a live bus process does at NextAttemptAt. An entry is keyed by
// (MessageUUID, Consumer); a delayed publish has no Consumer.
type Scheduled struct {
	MessageUUID string       `json:"message_uuid"`
	Consumer    string       `json:"consumer,omitempty"`
	Kind        ScheduleKind `json:"kind"`
	// EventID is the id of the row the entry acts on: the produced row of a delayed
	// publish; for a retry it may be empty (the consumed row is found by MessageUUID
	// and Consumer).
	EventID string `json:"event_id,omitempty"`
	// Topic is the topic the message is published to or was consumed from.
	Topic string `json:"topic"`
	// NextAttemptAt is when the entry is due; while a process holds it (ClaimedBy set),
	// when that claim lapses and the entry is due again.
	NextAttemptAt time.Time `json:"next_attempt_at"`
	// Attempts counts the handler runs (or publish attempts) made so far.
	Attempts int `json:"attempts"`
	// ClaimedBy is the process holding the entry, empty when none does.
	ClaimedBy string `json:"claimed_by,omitempty"`
	// LastError is the error of the latest attempt.
	LastError string    `json:"last_error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ErrNotScheduled is returned for a (message, consumer) with no schedule entry, or one
// held by another process.
var ErrNotScheduled = errors.New("modelevent: not scheduled")

const scheduleColumns = `message_uuid, consumer, kind, event_id, topic, next_attempt_at, attempts, claimed_by, last_error, created_at, updated_at`

func scanScheduled(sc scanner) (Scheduled, error) {
	var e Scheduled
	var kind string
	var next, created, updated int64
	if err := sc.Scan(&e.MessageUUID, &e.Consumer, &kind, &e.EventID, &e.Topic, &next, &e.Attempts, &e.ClaimedBy, &e.LastError, &created, &updated); err != nil {
		return e, err
	}
	e.Kind = ScheduleKind(kind)
	e.NextAttemptAt, e.CreatedAt, e.UpdatedAt = time.UnixMicro(next).UTC(), time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	return e, nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Schedule adds e to the schedule, or replaces the entry of its (MessageUUID,
// Consumer) and the claim on it.
func (s *SQLStore) Schedule(ctx context.Context, e Scheduled) error {
	return s.schedule(ctx, s.db, e)
}

// ScheduleTx is Schedule in the caller's transaction.
func (s *SQLStore) ScheduleTx(ctx context.Context, tx *sql.Tx, e Scheduled) error {
	return s.schedule(ctx, tx, e)
}

func (s *SQLStore) schedule(ctx context.Context, x execer, e Scheduled) error {
	if e.MessageUUID == "" || (e.Kind != ScheduleRetry && e.Kind != SchedulePublish) {
		return fmt.Errorf("modelevent: schedule: need a message uuid and a kind (retry, publish), got %q %q", e.MessageUUID, e.Kind)
	}
	if e.Kind == ScheduleRetry && e.Consumer == "" {
		return fmt.Errorf("modelevent: schedule retry of %s: no consumer", e.MessageUUID)
	}
	now := time.Now().UnixMicro()
	q := `INSERT INTO eventbus_schedule (` + scheduleColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?)`
	if s.dialect.name == DialectMySQL {
		q += ` ON DUPLICATE KEY UPDATE kind = VALUES(kind), event_id = VALUES(event_id), topic = VALUES(topic), next_attempt_at = VALUES(next_attempt_at),` +
			` attempts = VALUES(attempts), claimed_by = '', last_error = VALUES(last_error), updated_at = VALUES(updated_at)`
	} else {
		q += ` ON CONFLICT (message_uuid, consumer) DO UPDATE SET kind = excluded.kind, event_id = excluded.event_id, topic = excluded.topic,` +
			` next_attempt_at = excluded.next_attempt_at, attempts = excluded.attempts, claimed_by = '', last_error = excluded.last_error, updated_at = excluded.updated_at`
	}
	if _, err := x.ExecContext(ctx, s.dialect.rebind(q), e.MessageUUID, e.Consumer, string(e.Kind), e.EventID, e.Topic,
		e.NextAttemptAt.UnixMicro(), e.Attempts, e.LastError, now, now); err != nil {
		return fmt.Errorf("modelevent: schedule %s %s: %w", e.Kind, e.MessageUUID, err)
	}
	return nil
}

// ClaimDue claims up to limit entries due now for holder: the retries of the named
// consumers and, when publishes is true, the delayed publishes. A claim moves the
// entry's NextAttemptAt to now+claimFor and sets ClaimedBy; of processes racing for an
// entry exactly one wins (a conditional UPDATE). A holder that dies leaves its entries
// due again when their claims lapse. The entries are returned as claimed, with the
// NextAttemptAt they were due at.
func (s *SQLStore) ClaimDue(ctx context.Context, holder string, consumers []string, publishes bool, claimFor time.Duration, limit int) ([]Scheduled, error) {
	if holder == "" {
		return nil, errors.New("modelevent: claim due: empty holder")
	}
	if limit <= 0 {
		limit = 16
	}
	names := make([]string, 0, len(consumers)+1)
	if publishes {
		names = append(names, "")
	}
	names = append(names, consumers...)
	if len(names) == 0 {
		return nil, nil
	}
	now := time.Now()
	args := []any{now.UnixMicro()}
	for _, n := range names {
		args = append(args, n)
	}
	q := `SELECT ` + scheduleColumns + ` FROM eventbus_schedule WHERE next_attempt_at <= ? AND consumer IN (?` +
		strings.Repeat(", ?", len(names)-1) + `) ORDER BY next_attempt_at LIMIT ` + strconv.Itoa(limit)
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("modelevent: claim due: %w", err)
	}
	var due []Scheduled
	for rows.Next() {
		e, err := scanScheduled(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("modelevent: claim due: %w", err)
		}
		due = append(due, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("modelevent: claim due: %w", err)
	}
	var out []Scheduled
	until := now.Add(claimFor).UnixMicro()
	for _, e := range due {
		res, err := s.db.ExecContext(ctx, s.dialect.rebind(`UPDATE eventbus_schedule SET claimed_by = ?, next_attempt_at = ?, updated_at = ?`+
			` WHERE message_uuid = ? AND consumer = ? AND next_attempt_at = ?`),
			holder, until, now.UnixMicro(), e.MessageUUID, e.Consumer, e.NextAttemptAt.UnixMicro())
		if err != nil {
			return out, fmt.Errorf("modelevent: claim %s %s: %w", e.Kind, e.MessageUUID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			e.ClaimedBy = holder
			out = append(out, e)
		}
	}
	return out, nil
}

// Requeue gives back an entry holder claimed, due again at next, with the attempts
// made so far and the latest error. It returns an error wrapping ErrNotScheduled when
// holder no longer holds it (its claim lapsed and another process took it).
func (s *SQLStore) Requeue(ctx context.Context, messageUUID, consumer, holder string, next time.Time, attempts int, lastError string) error {
	res, err := s.db.ExecContext(ctx, s.dialect.rebind(`UPDATE eventbus_schedule SET claimed_by = '', next_attempt_at = ?, attempts = ?, last_error = ?, updated_at = ?`+
		` WHERE message_uuid = ? AND consumer = ? AND claimed_by = ?`),
		next.UnixMicro(), attempts, lastError, time.Now().UnixMicro(), messageUUID, consumer, holder)
	if err != nil {
		return fmt.Errorf("modelevent: requeue %s %s: %w", messageUUID, consumer, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: %s %s is not held by %s", ErrNotScheduled, messageUUID, consumer, holder)
	}
	return nil
}

// Unschedule removes the entry of (messageUUID, consumer): its work is done. With a
// holder it removes the entry only while holder holds it; with holder "" it removes it
// whoever holds it (an operator's cancel). It returns an error wrapping
// ErrNotScheduled when there was nothing to remove.
func (s *SQLStore) Unschedule(ctx context.Context, messageUUID, consumer, holder string) error {
	q := `DELETE FROM eventbus_schedule WHERE message_uuid = ? AND consumer = ?`
	args := []any{messageUUID, consumer}
	if holder != "" {
		q += ` AND claimed_by = ?`
		args = append(args, holder)
	}
	res, err := s.db.ExecContext(ctx, s.dialect.rebind(q), args...)
	if err != nil {
		return fmt.Errorf("modelevent: unschedule %s %s: %w", messageUUID, consumer, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: %s %s", ErrNotScheduled, messageUUID, consumer)
	}
	return nil
}

// Reschedule makes the unclaimed entry of (messageUUID, consumer) due at at (now, for
// "retry now"). It returns an error wrapping ErrNotScheduled when there is no such
// entry or a process is running it.
func (s *SQLStore) Reschedule(ctx context.Context, messageUUID, consumer string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, s.dialect.rebind(`UPDATE eventbus_schedule SET next_attempt_at = ?, updated_at = ?`+
		` WHERE message_uuid = ? AND consumer = ? AND claimed_by = ''`),
		at.UnixMicro(), time.Now().UnixMicro(), messageUUID, consumer)
	if err != nil {
		return fmt.Errorf("modelevent: reschedule %s %s: %w", messageUUID, consumer, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: %s %s (or a process is running it now)", ErrNotScheduled, messageUUID, consumer)
	}
	return nil
}

// GetScheduled returns the entry of (messageUUID, consumer), or an error wrapping
// ErrNotScheduled.
func (s *SQLStore) GetScheduled(ctx context.Context, messageUUID, consumer string) (Scheduled, error) {
	e, err := scanScheduled(s.db.QueryRowContext(ctx, s.dialect.rebind(`SELECT `+scheduleColumns+
		` FROM eventbus_schedule WHERE message_uuid = ? AND consumer = ?`), messageUUID, consumer))
	if errors.Is(err, sql.ErrNoRows) {
		return Scheduled{}, fmt.Errorf("%w: %s %s", ErrNotScheduled, messageUUID, consumer)
	}
	if err != nil {
		return Scheduled{}, fmt.Errorf("modelevent: scheduled %s %s: %w", messageUUID, consumer, err)
	}
	return e, nil
}

// ListScheduled lists the entries of kind (every kind when empty), soonest due first,
// at most limit (default 100, at most 1000).
func (s *SQLStore) ListScheduled(ctx context.Context, kind ScheduleKind, limit int) ([]Scheduled, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	q := `SELECT ` + scheduleColumns + ` FROM eventbus_schedule`
	var args []any
	if kind != "" {
		q += ` WHERE kind = ?`
		args = append(args, string(kind))
	}
	q += ` ORDER BY next_attempt_at LIMIT ` + strconv.Itoa(limit)
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("modelevent: list scheduled: %w", err)
	}
	defer rows.Close()
	var out []Scheduled
	for rows.Next() {
		e, err := scanScheduled(rows)
		if err != nil {
			return nil, fmt.Errorf("modelevent: list scheduled: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
