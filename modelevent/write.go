package modelevent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/go-eventbus/eventbus/modelevent/internal/driver"
)

// eventColumns are the columns of eventbus_events in the order of every insert and scan.
const eventColumns = `id, message_uuid, direction, handler, topic, model, backend, payload, metadata, status, attempts, last_error, correlation_id, created_at, updated_at, object_id, change_type, started_at, duration_us, meta_columns, trace_id`

const numEventColumns = 21

const attemptColumns = `message_uuid, direction, handler, started_at, duration_us, error`

const numAttemptColumns = 6

// Chunking of the multi-row inserts: rows per statement, and a soft cap on the payload
// bytes of one statement (MySQL's max_allowed_packet defaults to 16 MiB).
const (
	maxEventRows    = 256
	maxAttemptRows  = 512
	maxPayloadBytes = 4 << 20
)

type eventKey struct {
	uuid      string
	direction Direction
	handler   string
}

// row is one ModelEvent of a Write: the changes of one (MessageUUID, Direction, Handler)
// merged in order, ready for the database.
type row struct {
	ModelEvent
	key      eventKey
	attempts []Attempt
	// changes are the indexes of the changes merged into the row.
	changes []int
	meta    string
	// metaCols is the meta_columns bit set: the metadata keys meta leaves out.
	metaCols int
	// clean is a row written in one successful attempt: its attempt lives in the row
	// only (started_at, duration_us), eventbus_attempts gets nothing.
	clean bool
	// existed is set when the row was already stored (a redelivery, a retry), and
	// storedID is then its id when the write looked it up.
	existed  bool
	storedID string
}

// inline returns the start (unix µs) and duration (µs) of the row's latest attempt; zero
// when the write adds none.
func (r *row) inline() (int64, int64) {
	if len(r.attempts) == 0 {
		return 0, 0
	}
	a := r.attempts[len(r.attempts)-1]
	return a.StartedAt.UnixMicro(), a.Duration.Microseconds()
}

// ErrRejected is wrapped by a RejectedError: the store refused a change for its data.
var ErrRejected = errors.New("modelevent: change rejected")

// RejectedError is the error of a Write that stored every change but those the store
// refused for their data: a change that is not valid (no message UUID, an unknown
// status), or a row the database rejected (a constraint, a value it cannot hold) even
// after the repairs Write makes. The other changes of the call are stored. Writing a
// rejected change again fails again; a caller that keeps its message should poison it.
type RejectedError struct {
	// Changes maps the index (in the Write call) of each refused change to the reason.
	Changes map[int]error
}

// Error lists the refused changes.
func (e *RejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d changes rejected", len(e.Changes))
	n := 0
	for i, err := range e.Changes {
		if n == 3 {
			b.WriteString("; …")
			break
		}
		fmt.Fprintf(&b, "; change %d: %v", i, err)
		n++
	}
	return b.String()
}

// Unwrap returns ErrRejected.
func (e *RejectedError) Unwrap() error { return ErrRejected }

// Write stores changes. Changes to the same (MessageUUID, Direction, Handler) are first
// merged in order: attempts add up, the last Status and UpdatedAt win, the last non-empty
// LastError wins, the first non-empty ID and CreatedAt are kept, empty Topic, Backend,
// Model, ObjectID, Change, CorrelationID, TraceID, Payload and Metadata are filled from later
// changes, and NewAttempts are concatenated. New rows are plain inserts (one multi-row
// statement per up to 256 rows); only rows that already exist are upserted: a stored row
// keeps its ID and CreatedAt, and its non-empty Topic, Backend, Model, ObjectID, Change,
// CorrelationID, TraceID, Payload and Metadata are never replaced. A row written in one
// successful attempt keeps that attempt in the row; the attempt history
// (eventbus_attempts) holds only deliveries that failed or took more than one attempt.
//
// Values the columns cannot hold are repaired, not refused: text longer than its column
// is cut (ending in "…") and the column named in metadata key MetadataTruncated (the
// full value stays in metadata, or is put there as "eventbus_full_<column>"); invalid
// UTF-8 and NUL in text become U+FFFD. What the database still refuses for its data (a
// constraint) fails alone: the batch is split until only the refused rows are left
// out, every other row is stored, and Write returns a *RejectedError. Any other error
// (the database unreachable) means nothing was stored.
//
// Write fills in the changes it is given: Event.ID becomes the id of the row (the stored
// one when the row existed; for a new row the change's own id, a new ULID, or the id of
// an earlier change of the same row in the batch), a zero CreatedAt or UpdatedAt the
// time of the write. A non-empty Event.ID must
// be a ULID. Every change needs a MessageUUID, a valid Direction and a valid Status; a
// consumed change names its Handler, a produced one has none.
func (s *SQLStore) Write(ctx context.Context, changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	buf := getRowBuffer()
	defer putRowBuffer(buf)
	rows, rejected := buf.coalesce(changes, time.Now())
	if rejected == nil {
		rejected = map[int]error{}
	}
	if len(rows) > 0 {
		if err := s.writeOwn(ctx, rows, rejected); err != nil {
			return fmt.Errorf("modelevent: write %d changes: %w", len(changes), err)
		}
		keepStoredIDs(rows, changes)
	}
	if len(rejected) > 0 {
		return fmt.Errorf("modelevent: write %d changes: %w", len(changes), &RejectedError{Changes: rejected})
	}
	return nil
}

// WriteTx is Write inside the caller's transaction tx: the rows commit or roll back
// with it (a transactional outbox writes its produced rows this way). tx must belong to
// a database that holds the store's tables, in the store's dialect; it may come from
// another *sql.DB than the store's. Rows refused for their data are left out under a
// savepoint, so tx stays usable, and reported in a *RejectedError. WriteTx neither
// commits nor rolls back tx; after any other error the caller must roll it back.
func (s *SQLStore) WriteTx(ctx context.Context, tx *sql.Tx, changes []Change) error {
	if tx == nil {
		return errors.New("modelevent: write in transaction: nil *sql.Tx")
	}
	if len(changes) == 0 {
		return nil
	}
	buf := getRowBuffer()
	defer putRowBuffer(buf)
	rows, rejected := buf.coalesce(changes, time.Now())
	if rejected == nil {
		rejected = map[int]error{}
	}
	if len(rows) > 0 {
		if err := s.writeIsolated(ctx, tx, false, rows, rejected); err != nil {
			return fmt.Errorf("modelevent: write %d changes in transaction: %w", len(changes), err)
		}
		keepStoredIDs(rows, changes)
	}
	if len(rejected) > 0 {
		return fmt.Errorf("modelevent: write %d changes in transaction: %w", len(changes), &RejectedError{Changes: rejected})
	}
	return nil
}

// keepStoredIDs gives the changes of rows that were stored before the write the id
// of the stored row, which the write kept.
func keepStoredIDs(rows []*row, changes []Change) {
	for _, r := range rows {
		if r.storedID == "" {
			continue
		}
		for _, i := range r.changes {
			changes[i].Event.ID = r.storedID
		}
	}
}

// writeOwn writes rows in a transaction of the store's own: all at once, and only when
// the database refuses some row for its data, again row group by row group under
// savepoints so that only the refused rows are left out.
func (s *SQLStore) writeOwn(ctx context.Context, rows []*row, rejected map[int]error) error {
	if done, err := s.insertAlone(ctx, rows); done || (err != nil && !driver.IsDataError(err)) {
		return err
	}
	s.prepareStatements(ctx, rows)
	err := s.inTx(ctx, func(tx *sql.Tx) error { return s.writeIn(ctx, tx, true, rows) })
	if err == nil || !driver.IsDataError(err) {
		return err
	}
	for _, r := range rows {
		r.existed, r.storedID = false, ""
	}
	return s.inTx(ctx, func(tx *sql.Tx) error { return s.writeIsolated(ctx, tx, true, rows, rejected) })
}

// insertAlone writes a batch of new rows with one clean attempt each (the common case
// of a group commit) on PostgreSQL as one INSERT … ON CONFLICT DO NOTHING outside an
// explicit transaction: one statement is its own transaction, so the batch costs one
// round trip instead of three (BEGIN, INSERT, COMMIT) — what bounds durable recording
// when the store is a network hop away. It reports done when every row was inserted.
// When some rows were already stored it reports not done, and the transactional path
// takes the batch again: it finds the rows inserted here by their id and update time
// (so they count as new) and upserts the others.
//
// On SQLite, whose statements are no round trip, it serves the small batches of durable
// recording (up to sqliteAloneRows rows) with one prepared statement of exactly their
// size, cached: BEGIN, the power-of-two chunks of the transactional path (5 rows: 4
// and 1) and COMMIT are three or four statements through database/sql, each costing
// the writer CPU that the broker on the same cores could use.
func (s *SQLStore) insertAlone(ctx context.Context, rows []*row) (done bool, err error) {
	switch {
	case s.dialect.name == DialectPostgres && len(rows) <= maxEventRows:
	case s.dialect.name == DialectSQLite && len(rows) <= sqliteAloneRows:
	default:
		return false, nil
	}
	size := 0
	for _, r := range rows {
		if !r.clean {
			return false, nil
		}
		size += len(r.Payload)
	}
	if size > maxPayloadBytes {
		return false, nil
	}
	var res sql.Result
	if s.dialect.name == DialectSQLite {
		stmt := s.aloneStmt(ctx, len(rows))
		if stmt == nil {
			return false, nil
		}
		args := getArgs()
		*args = rowArgs(*args, rows, s.dialect.nullAsEmpty)
		res, err = stmt.ExecContext(ctx, *args...)
		putArgs(args)
	} else if len(rows) >= pgArrayMinRows {
		res, err = s.db.ExecContext(ctx, pgInsertNewEvents, pgEventArrays(rows)...)
	} else {
		args := getArgs()
		*args = rowArgs(*args, rows, s.dialect.nullAsEmpty)
		res, err = s.db.ExecContext(ctx, s.dialect.insertSQL(stmtInsertNew, len(rows)), *args...)
		putArgs(args)
	}
	if err != nil {
		return false, fmt.Errorf("insert %d events: %w", len(rows), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert %d events: %w", len(rows), err)
	}
	return int(n) == len(rows), nil
}

func (s *SQLStore) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// writeIsolated writes rows in tx under a savepoint. When the database refuses them for
// their data, it rolls back to the savepoint and writes each half the same way, down to
// single rows, whose changes it records in rejected.
func (s *SQLStore) writeIsolated(ctx context.Context, tx *sql.Tx, ownTx bool, rows []*row, rejected map[int]error) error {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT eventbus_write"); err != nil {
		return err
	}
	err := s.writeIn(ctx, tx, ownTx, rows)
	if err == nil {
		_, err = tx.ExecContext(ctx, "RELEASE SAVEPOINT eventbus_write")
		return err
	}
	if !driver.IsDataError(err) {
		return err
	}
	if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT eventbus_write"); rerr != nil {
		return errors.Join(err, rerr)
	}
	if _, rerr := tx.ExecContext(ctx, "RELEASE SAVEPOINT eventbus_write"); rerr != nil {
		return errors.Join(err, rerr)
	}
	for _, r := range rows {
		r.existed, r.storedID = false, ""
	}
	if len(rows) == 1 {
		reason := fmt.Errorf("message %s: %w", rows[0].MessageUUID, err)
		for _, i := range rows[0].changes {
			rejected[i] = reason
		}
		return nil
	}
	mid := len(rows) / 2
	if err := s.writeIsolated(ctx, tx, ownTx, rows[:mid], rejected); err != nil {
		return err
	}
	return s.writeIsolated(ctx, tx, ownTx, rows[mid:], rejected)
}

// writeIn writes rows in tx: new rows with plain inserts, rows that exist with upserts
// (after copying their inline attempt into the history), then the attempt history of
// the rows that need one. ownTx says whether tx belongs to s.db (and may use its
// prepared statements).
func (s *SQLStore) writeIn(ctx context.Context, tx *sql.Tx, ownTx bool, rows []*row) error {
	if s.dialect.skipsExisting {
		for start := 0; start < len(rows); {
			end := chunkEnd(rows, start)
			if err := s.insertNew(ctx, tx, ownTx, rows[start:end]); err != nil {
				return err
			}
			start = end
		}
	} else if err := s.markExisting(ctx, tx, rows); err != nil {
		return err
	}
	var existing []*row
	for _, r := range rows {
		if r.existed {
			if err := s.keepInlineAttempt(ctx, tx, r); err != nil {
				return err
			}
			existing = append(existing, r)
		}
	}
	if !s.dialect.skipsExisting {
		// MySQL upserts every row: a row another process inserted since the look-up is
		// merged instead of failing on the natural key.
		existing = rows
	}
	for start := 0; start < len(existing); {
		end := chunkEnd(existing, start)
		if err := s.upsert(ctx, tx, ownTx, existing[start:end]); err != nil {
			return err
		}
		start = end
	}
	return s.insertAttempts(ctx, tx, ownTx, rows)
}

// chunkEnd returns the end of the statement chunk of rows that starts at start: at most
// maxEventRows rows and, past the first row, at most maxPayloadBytes of payload. Chunks
// are powers of two (37 rows: 32, 4, 1), so a handful of statements, prepared once,
// serve every batch size.
func chunkEnd(rows []*row, start int) int {
	limit := pow2Floor(min(len(rows)-start, maxEventRows))
	end, size := start, 0
	for end < len(rows) && end-start < limit && (end == start || size+len(rows[end].Payload) <= maxPayloadBytes) {
		size += len(rows[end].Payload)
		end++
	}
	return pow2Floor(end-start) + start
}

// pow2Floor returns the largest power of two ≤ n (n ≥ 1).
func pow2Floor(n int) int {
	p := 1
	for p*2 <= n {
		p *= 2
	}
	return p
}

// rowArgs appends the column values of rows in eventColumns order. With nullEmpty
// (SQLite, whose statements turn NULL into an empty string in those columns: see insertSQL) an
// empty text value is passed as nil. Values repeated from the row before (topic,
// backend, handler, a creation time equal to the update time) reuse its boxed
// argument, and directions and statuses are boxed once per process: each boxed
// string or int64 is an allocation, and the writer goroutine is the store's ceiling.
func rowArgs(args []any, rows []*row, nullEmpty bool) []any {
	var topic, backend, handler lastArg
	for _, r := range rows {
		var payload any = r.Payload
		if r.Payload == nil {
			payload = emptyBlob
		}
		started, dur := r.inline()
		created := any(r.CreatedAt.UnixMicro())
		updated := created
		if !r.UpdatedAt.Equal(r.CreatedAt) {
			updated = r.UpdatedAt.UnixMicro()
		}
		args = append(args, r.ID, r.MessageUUID, directionArg(r.Direction),
			handler.of(r.Handler, nullEmpty), topic.of(r.Topic, nullEmpty), textArg(r.Model, nullEmpty),
			backend.of(r.Backend, nullEmpty), payload, textArg(r.meta, nullEmpty), statusArg(r.Status), r.Attempts,
			textArg(r.LastError, nullEmpty), textArg(r.correlationColumn(), nullEmpty), created, updated,
			textArg(r.ObjectID, nullEmpty), textArg(string(r.Change), nullEmpty), started, dur, r.metaCols,
			textArg(r.TraceID, nullEmpty))
	}
	return args
}

// emptyBlob is the payload argument of a row without payload (the column is NOT NULL).
var emptyBlob any = []byte{}

// textArg returns s as a statement argument: nil for "" with nullEmpty.
func textArg(s string, nullEmpty bool) any {
	if s == "" && nullEmpty {
		return nil
	}
	return s
}

// lastArg keeps the boxed argument of the last value it was given, so that a run of
// rows with the same value shares one.
type lastArg struct {
	s string
	v any
}

func (l *lastArg) of(s string, nullEmpty bool) any {
	if s == "" {
		return textArg(s, nullEmpty)
	}
	if l.v == nil || l.s != s {
		l.s, l.v = s, s
	}
	return l.v
}

// Directions and statuses boxed once.
var (
	directionArgs = map[Direction]any{Produced: string(Produced), Consumed: string(Consumed)}
	statusArgs    = map[Status]any{}
)

func init() {
	for _, s := range []Status{StatusPending, StatusRetrying, StatusSucceeded, StatusFailed, StatusPoisoned,
		StatusPublished, StatusPublishFailed} {
		statusArgs[s] = string(s)
	}
}

func directionArg(d Direction) any {
	if v, ok := directionArgs[d]; ok {
		return v
	}
	return string(d)
}

func statusArg(s Status) any {
	if v, ok := statusArgs[s]; ok {
		return v
	}
	return string(s)
}

// argSlices pools the argument slices of the multi-row statements (up to 256 × 21
// values: 86 KB each).
var argSlices = sync.Pool{New: func() any { return new([]any) }}

func getArgs() *[]any { return argSlices.Get().(*[]any) }

func putArgs(p *[]any) {
	clear(*p) // drop the references to the rows' values
	*p = (*p)[:0]
	argSlices.Put(p)
}

// insertNew inserts rows that are not stored yet and marks the others existed. The
// common case, every row new, costs the insert alone: the statement's count of inserted
// rows says so. When it falls short, the rows' stored ids tell which ones were there.
func (s *SQLStore) insertNew(ctx context.Context, tx *sql.Tx, ownTx bool, rows []*row) error {
	var res sql.Result
	var err error
	if s.dialect.name == DialectPostgres && len(rows) >= pgArrayMinRows {
		res, err = tx.ExecContext(ctx, pgInsertNewEvents, pgEventArrays(rows)...)
	} else {
		args := getArgs()
		*args = rowArgs(*args, rows, s.dialect.nullAsEmpty)
		res, err = s.execResult(ctx, tx, ownTx, stmtInsertNew, len(rows), *args)
		putArgs(args)
	}
	if err != nil {
		return fmt.Errorf("insert %d events: %w", len(rows), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("insert %d events: %w", len(rows), err)
	}
	if int(n) == len(rows) {
		return nil
	}
	return s.markExisting(ctx, tx, rows)
}

// markExisting looks up which rows were stored before this write: MySQL asks before it
// writes; SQLite and PostgreSQL after an insert that skipped some rows, where a row is
// the one just inserted when it holds its id and update time.
func (s *SQLStore) markExisting(ctx context.Context, tx *sql.Tx, rows []*row) error {
	index := make(map[eventKey]*row, len(rows))
	for start := 0; start < len(rows); start += maxEventRows {
		part := rows[start:min(start+maxEventRows, len(rows))]
		args := make([]any, len(part))
		for i, r := range part {
			args[i] = r.MessageUUID
			index[r.key] = r
		}
		q := s.dialect.rebind(`SELECT message_uuid, direction, handler, id, updated_at FROM eventbus_events WHERE message_uuid IN (?` +
			strings.Repeat(", ?", len(part)-1) + `)`)
		res, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("look up %d events: %w", len(part), err)
		}
		for res.Next() {
			var k eventKey
			var dir, id string
			var updated int64
			if err := res.Scan(&k.uuid, &dir, &k.handler, &id, &updated); err != nil {
				res.Close()
				return fmt.Errorf("look up %d events: %w", len(part), err)
			}
			k.direction = Direction(dir)
			if r := index[k]; r != nil {
				r.existed = !s.dialect.skipsExisting || id != r.ID || updated != r.UpdatedAt.UnixMicro()
				if r.existed {
					r.storedID = id
				}
			}
		}
		err = res.Err()
		res.Close()
		if err != nil {
			return fmt.Errorf("look up %d events: %w", len(part), err)
		}
	}
	return nil
}

// keepInlineAttempt copies the attempt a stored row keeps inline (one clean attempt) into
// the history before the row gets more, so the history stays complete.
func (s *SQLStore) keepInlineAttempt(ctx context.Context, tx *sql.Tx, r *row) error {
	q := s.dialect.rebind(`INSERT INTO eventbus_attempts (` + attemptColumns + `)
SELECT message_uuid, direction, handler, started_at, duration_us, '' FROM eventbus_events e
WHERE e.message_uuid = ? AND e.direction = ? AND e.handler = ? AND e.started_at <> 0
AND NOT EXISTS (SELECT 1 FROM eventbus_attempts a WHERE a.message_uuid = ? AND a.direction = ? AND a.handler = ?)`)
	if _, err := tx.ExecContext(ctx, q, r.MessageUUID, string(r.Direction), r.Handler,
		r.MessageUUID, string(r.Direction), r.Handler); err != nil {
		return fmt.Errorf("event %s: keep its attempt: %w", r.MessageUUID, err)
	}
	return nil
}

func (s *SQLStore) upsert(ctx context.Context, tx *sql.Tx, ownTx bool, rows []*row) error {
	var err error
	if s.dialect.name == DialectPostgres && len(rows) >= pgArrayMinRows {
		_, err = tx.ExecContext(ctx, pgUpsertEvents, pgEventArrays(rows)...)
	} else {
		args := getArgs()
		*args = rowArgs(*args, rows, s.dialect.nullAsEmpty)
		err = s.exec(ctx, tx, ownTx, stmtUpsert, len(rows), *args)
		putArgs(args)
	}
	if err != nil {
		return fmt.Errorf("upsert %d events: %w", len(rows), err)
	}
	return nil
}

// pgArrayMinRows is the batch size from which PostgreSQL gets column arrays instead
// of a VALUES list: measured, a handful of rows is faster as VALUES.
const pgArrayMinRows = 16

// pgEventsFromArrays inserts one row per element of 21 column arrays: one statement
// text (prepared once per connection by pgx) whatever the batch size, and next to no
// planning, where a VALUES list of n rows has 21n parameters to bind and plan.
const pgEventsFromArrays = `INSERT INTO eventbus_events (` + eventColumns + `) SELECT * FROM unnest(` +
	`$1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[], $6::varchar[], $7::varchar[], ` +
	`$8::bytea[], $9::text[], $10::varchar[], $11::int[], $12::text[], $13::varchar[], $14::bigint[], $15::bigint[], ` +
	`$16::varchar[], $17::varchar[], $18::bigint[], $19::bigint[], $20::int[], $21::varchar[])`

const (
	pgInsertNewEvents = pgEventsFromArrays + onConflictNothing
	pgUpsertEvents    = pgEventsFromArrays + onConflictUpsert
)

const pgInsertAttempts = `INSERT INTO eventbus_attempts (` + attemptColumns + `) SELECT * FROM unnest(` +
	`$1::varchar[], $2::varchar[], $3::varchar[], $4::bigint[], $5::bigint[], $6::text[])`

// pgEventArrays returns the 21 column arrays of rows for pgEventsFromArrays.
func pgEventArrays(rows []*row) []any {
	n := len(rows)
	ids, uuids, dirs, handlers, topics, models, backends := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	payloads, metas, statuses, lastErrs, corrs := make([][]byte, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	attempts, created, updated, started, durs := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	objectIDs, changeTypes, metaCols, traces := make([]string, n), make([]string, n), make([]int64, n), make([]string, n)
	for i, r := range rows {
		metaCols[i], traces[i] = int64(r.metaCols), r.TraceID
		payloads[i] = r.Payload
		if payloads[i] == nil {
			payloads[i] = []byte{}
		}
		ids[i], uuids[i], dirs[i], handlers[i], topics[i], models[i], backends[i] =
			r.ID, r.MessageUUID, string(r.Direction), r.Handler, r.Topic, r.Model, r.Backend
		metas[i], statuses[i], attempts[i], lastErrs[i], corrs[i] =
			r.meta, string(r.Status), int64(r.Attempts), r.LastError, r.correlationColumn()
		created[i], updated[i] = r.CreatedAt.UnixMicro(), r.UpdatedAt.UnixMicro()
		objectIDs[i], changeTypes[i] = r.ObjectID, string(r.Change)
		started[i], durs[i] = r.inline()
	}
	return []any{ids, uuids, dirs, handlers, topics, models, backends,
		payloads, metas, statuses, attempts, lastErrs, corrs, created, updated, objectIDs, changeTypes, started, durs, metaCols, traces}
}

// insertAttempts inserts the history of the rows that keep one: every attempt of a row
// that existed, failed or took more than one attempt.
func (s *SQLStore) insertAttempts(ctx context.Context, tx *sql.Tx, ownTx bool, rows []*row) error {
	var pending []attemptRow
	for _, r := range rows {
		if r.clean && !r.existed {
			continue
		}
		for _, a := range r.attempts {
			pending = append(pending, attemptRow{key: r.key, Attempt: a})
		}
	}
	for start := 0; start < len(pending); {
		n := pow2Floor(min(len(pending)-start, maxAttemptRows))
		if err := s.insertAttemptRows(ctx, tx, ownTx, pending[start:start+n]); err != nil {
			return err
		}
		start += n
	}
	return nil
}

type attemptRow struct {
	key eventKey
	Attempt
}

func (s *SQLStore) insertAttemptRows(ctx context.Context, tx *sql.Tx, ownTx bool, rows []attemptRow) error {
	if s.dialect.name == DialectPostgres && len(rows) >= pgArrayMinRows {
		n := len(rows)
		uuids, dirs, handlers, errs := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		started, durs := make([]int64, n), make([]int64, n)
		for i, a := range rows {
			uuids[i], dirs[i], handlers[i] = a.key.uuid, string(a.key.direction), a.key.handler
			started[i], durs[i], errs[i] = a.StartedAt.UnixMicro(), a.Duration.Microseconds(), cleanText(a.Error)
		}
		if _, err := tx.ExecContext(ctx, pgInsertAttempts, uuids, dirs, handlers, started, durs, errs); err != nil {
			return fmt.Errorf("insert %d attempts: %w", n, err)
		}
		return nil
	}
	args := getArgs()
	defer putArgs(args)
	nullEmpty := s.dialect.nullAsEmpty
	for _, a := range rows {
		*args = append(*args, a.key.uuid, directionArg(a.key.direction), textArg(a.key.handler, nullEmpty),
			a.StartedAt.UnixMicro(), a.Duration.Microseconds(), textArg(cleanText(a.Error), nullEmpty))
	}
	if err := s.exec(ctx, tx, ownTx, stmtAttempts, len(rows), *args); err != nil {
		return fmt.Errorf("insert %d attempts: %w", len(rows), err)
	}
	return nil
}

type stmtKind int

const (
	stmtInsertNew stmtKind = iota
	stmtUpsert
	stmtAttempts
	// stmtInsertAlone is stmtInsertNew's statement run outside a transaction
	// (insertAlone, SQLite): a cache key only, for statements of any size up to
	// sqliteAloneRows.
	stmtInsertAlone
)

type sqlKey struct {
	dialect string
	kind    stmtKind
	rows    int
}

// maxCachedStmts bounds the prepared-statement cache; batches of other sizes still work,
// their statements are prepared per call. It leaves room for the transactional path's
// statements beside the up to sqliteAloneRows of insertAlone.
const maxCachedStmts = 64 + sqliteAloneRows

// prepareStatements puts the inserts a write of rows will use in the statement cache
// (SQLite only: pgx caches prepared statements itself, and Open makes go-sql-driver
// interpolate). It runs before the write transaction begins: preparing on the pool
// while the transaction holds a connection would deadlock a single-connection
// (in-memory) database.
func (s *SQLStore) prepareStatements(ctx context.Context, rows []*row) {
	if s.dialect.name != DialectSQLite {
		return
	}
	attempts := 0
	for _, r := range rows {
		if !r.clean {
			attempts += len(r.attempts)
		}
	}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	prepare := func(kind stmtKind, n int) {
		key := sqlKey{s.dialect.name, kind, n}
		if _, ok := s.stmts[key]; ok || len(s.stmts) >= maxCachedStmts {
			return
		}
		stmt, err := s.db.PrepareContext(ctx, s.dialect.insertSQL(kind, n))
		if err != nil {
			return // not cached: the statement runs unprepared and reports the error itself
		}
		if s.stmts == nil {
			s.stmts = map[sqlKey]*sql.Stmt{}
		}
		s.stmts[key] = stmt
	}
	for start := 0; start < len(rows); {
		end := chunkEnd(rows, start)
		prepare(stmtInsertNew, end-start)
		start = end
	}
	for start := 0; start < attempts; {
		n := pow2Floor(min(attempts-start, maxAttemptRows))
		prepare(stmtAttempts, n)
		start += n
	}
}

// sqliteAloneRows is the largest batch insertAlone writes on SQLite, with a statement
// of its exact size: the statement cache then holds up to 32 of them beside the
// power-of-two ones of the transactional path (within maxCachedStmts).
const sqliteAloneRows = 32

// aloneStmt returns the cached statement inserting exactly n new rows outside a
// transaction (kind stmtInsertNew, keyed apart from the transactional path's chunks),
// preparing it on first use; nil when it cannot be prepared or cached.
func (s *SQLStore) aloneStmt(ctx context.Context, n int) *sql.Stmt {
	key := sqlKey{s.dialect.name, stmtInsertAlone, n}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if stmt, ok := s.stmts[key]; ok {
		return stmt
	}
	if len(s.stmts) >= maxCachedStmts {
		return nil
	}
	stmt, err := s.db.PrepareContext(ctx, s.dialect.insertSQL(stmtInsertNew, n))
	if err != nil {
		return nil // the transactional path runs the batch and reports the error
	}
	if s.stmts == nil {
		s.stmts = map[sqlKey]*sql.Stmt{}
	}
	s.stmts[key] = stmt
	return stmt
}

// cached returns the prepared statement of kind for n rows in tx, or nil.
func (s *SQLStore) cached(ctx context.Context, tx *sql.Tx, ownTx bool, kind stmtKind, n int) *sql.Stmt {
	if !ownTx {
		return nil
	}
	s.stmtMu.Lock()
	stmt := s.stmts[sqlKey{s.dialect.name, kind, n}]
	s.stmtMu.Unlock()
	if stmt == nil {
		return nil
	}
	return tx.StmtContext(ctx, stmt)
}

// exec runs the multi-row statement of kind for n rows in tx.
func (s *SQLStore) exec(ctx context.Context, tx *sql.Tx, ownTx bool, kind stmtKind, n int, args []any) error {
	_, err := s.execResult(ctx, tx, ownTx, kind, n, args)
	return err
}

func (s *SQLStore) execResult(ctx context.Context, tx *sql.Tx, ownTx bool, kind stmtKind, n int, args []any) (sql.Result, error) {
	if stmt := s.cached(ctx, tx, ownTx, kind, n); stmt != nil {
		return stmt.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, s.dialect.insertSQL(kind, n), args...)
}

// emptyAsNull reports whether column j of the statement kind is a text column whose
// empty value rowArgs passes as NULL with nullAsEmpty (SQLite). Binding "" costs the
// SQLite driver a C allocation, a free and a NULL bind per value, and most rows leave
// six to eight such columns empty; NULL costs one bind, and the statement stores an empty string for it.
func emptyAsNull(kind stmtKind, j int) bool {
	if kind == stmtAttempts {
		return j == 2 || j == 5 // handler, error
	}
	switch j {
	case 3, 4, 5, 6, 8, 11, 12, 15, 16, 20: // handler, topic, model, backend, metadata, last_error, correlation_id, object_id, change_type, trace_id
		return true
	}
	return false
}

// insertSQLs caches the text of the multi-row statements by dialect, kind and row count.
var insertSQLs sync.Map // sqlKey → string

// insertSQL returns the multi-row statement of kind for n rows: the insert of new
// events, the events upsert, or the attempts insert.
func (d *dialect) insertSQL(kind stmtKind, n int) string {
	key := sqlKey{d.name, kind, n}
	if q, ok := insertSQLs.Load(key); ok {
		return q.(string)
	}
	cols, table, ncols := eventColumns, "eventbus_events", numEventColumns
	if kind == stmtAttempts {
		cols, table, ncols = attemptColumns, "eventbus_attempts", numAttemptColumns
	}
	var b strings.Builder
	b.Grow(64 + len(cols) + n*ncols*5 + len(d.upsert))
	b.WriteString("INSERT INTO ")
	b.WriteString(table)
	b.WriteString(" (")
	b.WriteString(cols)
	b.WriteString(") VALUES ")
	p := 0
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j := 0; j < ncols; j++ {
			if j > 0 {
				b.WriteByte(',')
			}
			p++
			switch {
			case d.dollar:
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(p))
			case d.nullAsEmpty && emptyAsNull(kind, j):
				b.WriteString("coalesce(?,'')")
			default:
				b.WriteByte('?')
			}
		}
		b.WriteByte(')')
	}
	switch kind {
	case stmtInsertNew:
		b.WriteString(onConflictNothing)
	case stmtUpsert:
		b.WriteString(d.upsert)
	}
	q := b.String()
	insertSQLs.Store(key, q)
	return q
}

// coalesce validates and repairs changes, fills in their empty ids and times, and merges
// the changes of one row in order. It returns the rows in order of first appearance,
// and the changes it refused (by index) with the reason.
func coalesce(changes []Change, now time.Time) ([]*row, map[int]error) {
	return new(rowBuffer).coalesce(changes, now)
}

// rowBuffer holds the rows of one Write: their structs, pointers, change indexes and
// the index by key, reused from write to write (rowBuffers) instead of allocated per
// row — at full speed they were a third of the bytes the store allocated.
type rowBuffer struct {
	rows    []row
	ptrs    []*row
	indexes []int
	index   map[eventKey]*row
}

// maxPooledRows bounds the buffers kept for reuse (a batch of the recorder is 256).
const maxPooledRows = 4096

var rowBuffers = sync.Pool{New: func() any { return new(rowBuffer) }}

func getRowBuffer() *rowBuffer { return rowBuffers.Get().(*rowBuffer) }

// putRowBuffer drops what buf refers to (payloads, metadata) and keeps it for reuse.
func putRowBuffer(buf *rowBuffer) {
	if cap(buf.rows) > maxPooledRows {
		return
	}
	clear(buf.rows[:cap(buf.rows)])
	clear(buf.ptrs[:cap(buf.ptrs)])
	clear(buf.index)
	rowBuffers.Put(buf)
}

// coalesce is the package's coalesce with the rows in buf; they are valid until buf is
// reused.
func (buf *rowBuffer) coalesce(changes []Change, now time.Time) ([]*row, map[int]error) {
	now = now.UTC()
	if cap(buf.rows) < len(changes) {
		buf.rows = make([]row, 0, len(changes))
		buf.ptrs = make([]*row, 0, len(changes))
		buf.indexes = make([]int, len(changes))
	}
	// Appending never moves backing: the rows' pointers stay valid.
	rows, backing, indexes := buf.ptrs[:0], buf.rows[:0], buf.indexes[:len(changes)]
	var rejected map[int]error
	var index map[eventKey]*row
	if len(changes) > 1 {
		if buf.index == nil {
			buf.index = make(map[eventKey]*row, len(changes))
		}
		index = buf.index
	}
	for i := range changes {
		e := &changes[i].Event
		if err := validateChange(e); err != nil {
			if rejected == nil {
				rejected = map[int]error{}
			}
			rejected[i] = fmt.Errorf("change %d: %w", i, err)
			continue
		}
		if e.UpdatedAt.IsZero() {
			e.UpdatedAt = now
		}
		k := eventKey{e.MessageUUID, e.Direction, e.Handler}
		if r := index[k]; r != nil {
			mergeInto(&r.ModelEvent, e)
			r.attempts = append(r.attempts, changes[i].NewAttempts...)
			r.changes = append(r.changes, i)
			continue
		}
		indexes[i] = i
		backing = append(backing, row{ModelEvent: *e, key: k, changes: indexes[i : i+1 : i+1]})
		r := &backing[len(backing)-1]
		r.History = nil
		r.attempts = changes[i].NewAttempts
		if index != nil {
			index[k] = r
		}
		rows = append(rows, r)
	}
	buf.rows, buf.ptrs = backing, rows
	for _, r := range rows {
		if r.ID == "" {
			r.ID = ulid.Make().String()
		}
		if r.CreatedAt.IsZero() {
			r.CreatedAt = now
		}
		if len(r.changes) > 1 {
			// Merged attempts get a slice of their own: NewAttempts belong to the caller.
			r.attempts = append([]Attempt(nil), r.attempts...)
		}
		r.clean = r.Attempts == 1 && len(r.attempts) == 1 && r.attempts[0].Error == "" &&
			(r.Status == StatusSucceeded || r.Status == StatusPublished)
		repair(r)
		for _, i := range r.changes {
			e := &changes[i].Event
			if e.ID == "" {
				e.ID = r.ID
			}
			if e.CreatedAt.IsZero() {
				e.CreatedAt = r.CreatedAt
			}
		}
	}
	return rows, rejected
}

// mergeInto merges the later change c into row r of the same key.
func mergeInto(r, c *ModelEvent) {
	r.Attempts += c.Attempts
	r.Status = c.Status
	r.UpdatedAt = c.UpdatedAt
	if c.LastError != "" {
		r.LastError = c.LastError
	}
	if r.ID == "" {
		r.ID = c.ID
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = c.CreatedAt
	}
	if r.Topic == "" {
		r.Topic = c.Topic
	}
	if r.Backend == "" {
		r.Backend = c.Backend
	}
	if r.Model == "" {
		r.Model = c.Model
	}
	if r.ObjectID == "" {
		r.ObjectID = c.ObjectID
	}
	if r.Change == "" {
		r.Change = c.Change
	}
	if r.CorrelationID == "" {
		r.CorrelationID = c.CorrelationID
	}
	if r.TraceID == "" {
		r.TraceID = c.TraceID
	}
	if len(r.Payload) == 0 {
		r.Payload = c.Payload
	}
	if len(r.Metadata) == 0 {
		r.Metadata = c.Metadata
	}
}

func validateChange(e *ModelEvent) error {
	if e.MessageUUID == "" {
		return errors.New("empty message_uuid")
	}
	if !e.Direction.Valid() {
		return fmt.Errorf("message %s: unknown direction %q (accepted: produced, consumed)", e.MessageUUID, e.Direction)
	}
	if (e.Direction == Consumed) == (e.Handler == "") {
		if e.Handler == "" {
			return fmt.Errorf("message %s: a consumed row needs its handler", e.MessageUUID)
		}
		return fmt.Errorf("message %s: a produced row has no handler, got %q", e.MessageUUID, e.Handler)
	}
	if !e.Status.Valid() {
		return fmt.Errorf("message %s: unknown status %q", e.MessageUUID, e.Status)
	}
	if e.Attempts < 0 {
		return fmt.Errorf("message %s: negative attempts %d", e.MessageUUID, e.Attempts)
	}
	if e.ID != "" {
		id, ok := normalizeID(e.ID)
		if !ok {
			return fmt.Errorf("message %s: malformed id %q (an event id is a 26-character ULID)", e.MessageUUID, e.ID)
		}
		e.ID = id
	}
	return nil
}
