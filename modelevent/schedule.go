package modelevent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
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

// ClaimDue claims entries due now for holder: up to maxPublishes delayed publishes and
// up to maxRetries retries of the named consumers. A claim moves the entry's
// NextAttemptAt to now+claimFor and sets ClaimedBy; of processes racing for an entry
// exactly one wins (one conditional UPDATE for the batch, keyed by a token of this
// call). A holder that dies leaves its entries due again when their claims lapse. The
// entries are returned as claimed, NextAttemptAt being when they were due, with
// contended reporting that due entries were left to other processes (look again at
// once). The cost is one indexed query when nothing is due, three per batch otherwise.
func (s *SQLStore) ClaimDue(ctx context.Context, holder string, consumers []string, maxPublishes, maxRetries int, claimFor time.Duration) (claimed []Scheduled, contended bool, err error) {
	if holder == "" {
		return nil, false, errors.New("modelevent: claim due: empty holder")
	}
	names := make([]string, 0, len(consumers)+1)
	if maxPublishes > 0 {
		names = append(names, "")
	}
	if maxRetries > 0 {
		names = append(names, consumers...)
	}
	if len(names) == 0 {
		return nil, false, nil
	}
	now := time.Now()
	args := []any{now.UnixMicro()}
	for _, n := range names {
		args = append(args, n)
	}
	// Twice the batch: processes that race read the same first entries, and each
	// claims the ones the others have not.
	q := `SELECT ` + scheduleColumns + ` FROM eventbus_schedule WHERE next_attempt_at <= ? AND consumer IN (?` +
		strings.Repeat(", ?", len(names)-1) + `) ORDER BY next_attempt_at LIMIT ` + strconv.Itoa(2*(maxPublishes+maxRetries))
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(q), args...)
	if err != nil {
		return nil, false, fmt.Errorf("modelevent: claim due: %w", err)
	}
	var due []Scheduled
	for rows.Next() {
		e, err := scanScheduled(rows)
		if err != nil {
			rows.Close()
			return nil, false, fmt.Errorf("modelevent: claim due: %w", err)
		}
		due = append(due, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("modelevent: claim due: %w", err)
	}
	if len(due) == 0 {
		return nil, false, nil
	}
	rand.Shuffle(len(due), func(i, j int) { due[i], due[j] = due[j], due[i] })
	var pick []Scheduled
	np, nr := 0, 0
	for _, e := range due {
		switch {
		case e.Consumer == "" && np < maxPublishes:
			np++
		case e.Consumer != "" && nr < maxRetries:
			nr++
		default:
			contended = true
			continue
		}
		pick = append(pick, e)
	}
	if len(pick) == 0 {
		return nil, contended, nil
	}
	token := holder
	if len(token) > 50 {
		token = token[:50]
	}
	token += "/" + strconv.FormatUint(rand.Uint64()&0xffffffffffff, 36)
	until := now.Add(claimFor).UnixMicro()
	uargs := []any{token, until, now.UnixMicro(), now.UnixMicro()}
	for _, e := range pick {
		uargs = append(uargs, e.MessageUUID, e.Consumer)
	}
	res, err := s.db.ExecContext(ctx, s.dialect.rebind(`UPDATE eventbus_schedule SET claimed_by = ?, next_attempt_at = ?, updated_at = ?`+
		` WHERE next_attempt_at <= ? AND (message_uuid, consumer) IN ((?, ?)`+strings.Repeat(", (?, ?)", len(pick)-1)+`)`), uargs...)
	if err != nil {
		return nil, contended, fmt.Errorf("modelevent: claim due: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, true, nil
	} else if int(n) < len(pick) {
		contended = true
	}
	won := map[[2]string]bool{}
	crow, err := s.db.QueryContext(ctx, s.dialect.rebind(`SELECT message_uuid, consumer FROM eventbus_schedule WHERE claimed_by = ?`), token)
	if err != nil {
		return nil, contended, fmt.Errorf("modelevent: claim due: %w", err)
	}
	for crow.Next() {
		var k [2]string
		if err := crow.Scan(&k[0], &k[1]); err != nil {
			crow.Close()
			return nil, contended, fmt.Errorf("modelevent: claim due: %w", err)
		}
		won[k] = true
	}
	crow.Close()
	for _, e := range pick {
		if won[[2]string{e.MessageUUID, e.Consumer}] {
			e.ClaimedBy = token
			claimed = append(claimed, e)
		}
	}
	return claimed, contended, crow.Err()
}

// UnscheduleMany removes the entries of keys ((message UUID, consumer) pairs) that
// holder holds: their work is done.
func (s *SQLStore) UnscheduleMany(ctx context.Context, keys [][2]string, holder string) error {
	for len(keys) > 0 {
		n := min(len(keys), 200)
		args := []any{holder}
		for _, k := range keys[:n] {
			args = append(args, k[0], k[1])
		}
		if _, err := s.db.ExecContext(ctx, s.dialect.rebind(`DELETE FROM eventbus_schedule WHERE claimed_by = ? AND (message_uuid, consumer) IN ((?, ?)`+
			strings.Repeat(", (?, ?)", n-1)+`)`), args...); err != nil {
			return fmt.Errorf("modelevent: unschedule %d entries: %w", len(keys), err)
		}
		keys = keys[n:]
	}
	return nil
}

// GetMany returns the events with the given ids that exist, without History.
func (s *SQLStore) GetMany(ctx context.Context, ids []string) ([]ModelEvent, error) {
	var out []ModelEvent
	for len(ids) > 0 {
		n := min(len(ids), 500)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		rows, err := s.db.QueryContext(ctx, s.dialect.rebind(selectEvents+` WHERE id IN (?`+strings.Repeat(", ?", n-1)+`)`), args...)
		if err != nil {
			return nil, fmt.Errorf("modelevent: get %d events: %w", len(ids), err)
		}
		for rows.Next() {
			e, err := scanEvent(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("modelevent: get %d events: %w", len(ids), err)
			}
			out = append(out, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("modelevent: get %d events: %w", len(ids), err)
		}
		ids = ids[n:]
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

// CancelScheduled removes the unclaimed entry of (messageUUID, consumer) and ends its
// row: a delayed publish becomes cancelled (nothing is sent), a scheduled retry failed.
// It returns an error wrapping ErrNotScheduled when there is no such entry or a
// process is running it now.
func (s *SQLStore) CancelScheduled(ctx context.Context, messageUUID, consumer string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.dialect.rebind(`DELETE FROM eventbus_schedule WHERE message_uuid = ? AND consumer = ? AND claimed_by = ''`), messageUUID, consumer)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("%w: %s %s (or a process is running it now)", ErrNotScheduled, messageUUID, consumer)
		}
		from, to := StatusScheduled, StatusCancelled
		if consumer != "" {
			from, to = StatusRetrying, StatusFailed
		}
		_, err = tx.ExecContext(ctx, s.dialect.rebind(`UPDATE eventbus_events SET status = ?, updated_at = ?, last_error = CASE WHEN last_error = '' THEN ? ELSE last_error END`+
			` WHERE message_uuid = ? AND handler = ? AND status = ?`), string(to), time.Now().UnixMicro(), "cancelled by an operator", messageUUID, consumer, string(from))
		return err
	})
	if err != nil && !errors.Is(err, ErrNotScheduled) {
		return fmt.Errorf("modelevent: cancel %s %s: %w", messageUUID, consumer, err)
	}
	return err
}
