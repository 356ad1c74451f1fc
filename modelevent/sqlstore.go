package modelevent

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	// The database/sql drivers of the three dialects.
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/oklog/ulid/v2"
)

// SQLStore is the Store on a SQL database: SQLite, PostgreSQL or MySQL/MariaDB. It is
// safe for concurrent use. Create the schema with Migrate before the first Write.
type SQLStore struct {
	db      *sql.DB
	dialect *dialect
	ownDB   bool

	// stmts caches the prepared multi-row inserts by row count (SQLite only: pgx caches
	// prepared statements itself, and Open makes go-sql-driver interpolate).
	stmtMu sync.Mutex
	stmts  map[sqlKey]*sql.Stmt

	closeOnce sync.Once
	closeErr  error
}

// maxCachedStmts bounds the prepared-statement cache; batches of other sizes still work,
// their statements are prepared per call.
const maxCachedStmts = 64

// prepareInserts puts the inserts of the given row counts in the statement cache. It
// runs before the write transaction begins: preparing on the pool while the transaction
// holds a connection would deadlock a single-connection (in-memory) database.
func (s *SQLStore) prepareInserts(ctx context.Context, kind stmtKind, sizes []int) {
	if s.dialect.name != DialectSQLite {
		return
	}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	for _, n := range sizes {
		key := sqlKey{s.dialect.name, kind, n}
		if _, ok := s.stmts[key]; ok || len(s.stmts) >= maxCachedStmts {
			continue
		}
		stmt, err := s.db.PrepareContext(ctx, s.dialect.insertSQL(kind, n))
		if err != nil {
			// Not cached: the statement runs unprepared and reports the error itself.
			continue
		}
		if s.stmts == nil {
			s.stmts = map[sqlKey]*sql.Stmt{}
		}
		s.stmts[key] = stmt
	}
}

// exec runs the multi-row insert of kind for n rows in tx, through the cached prepared
// statement when there is one and tx is a transaction of the store's own database.
func (s *SQLStore) exec(ctx context.Context, tx *sql.Tx, ownTx bool, kind stmtKind, n int, args []any) error {
	var stmt *sql.Stmt
	if ownTx {
		s.stmtMu.Lock()
		stmt = s.stmts[sqlKey{s.dialect.name, kind, n}]
		s.stmtMu.Unlock()
	}
	if stmt == nil {
		_, err := tx.ExecContext(ctx, s.dialect.insertSQL(kind, n), args...)
		return err
	}
	_, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
	return err
}

var _ Store = (*SQLStore)(nil)

// pingTimeout bounds Open's connection check when ctx has no deadline.
const pingTimeout = 10 * time.Second

// Open opens the store of the named driver — "sqlite", "postgres" or "mysql" — at dsn,
// checks that the database answers, and returns it; call Migrate to create the schema.
//
// For sqlite, dsn is a path or a "file:" URI (modernc.org/sqlite, pure Go); WAL,
// synchronous NORMAL, a 5s busy timeout, foreign keys and immediate transactions are
// added unless dsn sets them, and an in-memory database gets a single connection. For
// postgres, dsn is a pgx URL or keyword/value string. For mysql (MySQL or MariaDB), dsn is
// a go-sql-driver DSN; parseTime and client-side parameter interpolation are turned on.
//
// If the database does not answer before ctx ends (or within 10s when ctx has no
// deadline), Open returns an error naming the driver and the DSN, password redacted.
func Open(ctx context.Context, driver, dsn string) (*SQLStore, error) {
	d, err := lookupDialect(driver)
	if err != nil {
		return nil, err
	}
	full, inMemory, err := d.prepareDSN(dsn)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(d.sqlDriver, full)
	if err != nil {
		return nil, fmt.Errorf("modelevent: open %s store %q: %w", driver, redactDSN(driver, dsn), err)
	}
	if inMemory {
		// Each connection to ":memory:" is a database of its own.
		db.SetMaxOpenConns(1)
	}
	pctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, pingTimeout)
		defer cancel()
	}
	if err := db.PingContext(pctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("modelevent: open %s store %q: database unreachable: %w", driver, redactDSN(driver, dsn), err)
	}
	return &SQLStore{db: db, dialect: d, ownDB: true}, nil
}

// NewSQLStore returns the store on a database the caller opened and owns; dialect is
// "sqlite", "postgres" or "mysql". Close does not close db, and db is used as it is:
// none of the DSN settings Open adds are applied.
func NewSQLStore(db *sql.DB, dialect string) (*SQLStore, error) {
	d, err := lookupDialect(dialect)
	if err != nil {
		return nil, err
	}
	if db == nil {
		return nil, errors.New("modelevent: new sql store: nil *sql.DB")
	}
	return &SQLStore{db: db, dialect: d}, nil
}

// DB returns the store's database, for packages that keep their own tables in it.
func (s *SQLStore) DB() *sql.DB { return s.db }

// Dialect returns "sqlite", "postgres" or "mysql".
func (s *SQLStore) Dialect() string { return s.dialect.name }

// Close closes the database if Open opened it. It is idempotent.
func (s *SQLStore) Close() error {
	s.closeOnce.Do(func() {
		s.stmtMu.Lock()
		for _, st := range s.stmts {
			_ = st.Close()
		}
		s.stmts = nil
		s.stmtMu.Unlock()
		if s.ownDB {
			s.closeErr = s.db.Close()
		}
	})
	return s.closeErr
}

// eventColumns are the columns of eventbus_events in the order of every insert and scan.
const eventColumns = `id, message_uuid, direction, handler, topic, model, backend, payload, metadata, status, attempts, last_error, correlation_id, created_at, updated_at, object_id, change_type`

const numEventColumns = 17

const attemptColumns = `message_uuid, direction, handler, started_at, duration_us, error`

const numAttemptColumns = 6

// Chunking of the multi-row inserts: rows per statement, and a soft cap on the payload
// bytes of one statement (MySQL's max_allowed_packet defaults to 16 MiB).
const (
	maxEventRows    = 256
	maxAttemptRows  = 512
	maxPayloadBytes = 4 << 20
)

// The lengths of the VARCHAR columns, checked in Write so every dialect agrees.
var columnLimits = []struct {
	name string
	max  int
	get  func(*ModelEvent) string
}{
	{"message_uuid", 64, func(e *ModelEvent) string { return e.MessageUUID }},
	{"handler", 191, func(e *ModelEvent) string { return e.Handler }},
	{"topic", 255, func(e *ModelEvent) string { return e.Topic }},
	{"model", 255, func(e *ModelEvent) string { return e.Model }},
	{"object_id", 191, func(e *ModelEvent) string { return e.ObjectID }},
	{"change_type", 16, func(e *ModelEvent) string { return string(e.Change) }},
	{"backend", 32, func(e *ModelEvent) string { return e.Backend }},
	{"correlation_id", 255, func(e *ModelEvent) string { return e.CorrelationID }},
}

type eventKey struct {
	uuid      string
	direction Direction
	handler   string
}

type attemptRow struct {
	key eventKey
	Attempt
}

// Write applies changes in one transaction. Changes to the same (MessageUUID,
// Direction, Handler) are first merged in order: attempts add up, the last Status and
// UpdatedAt win, the last non-empty LastError wins, the first non-empty ID and CreatedAt
// are kept, empty Topic, Backend, Model, CorrelationID, Payload and Metadata are filled
// from later changes (so are empty ObjectID and Change), and NewAttempts are concatenated. The rows then go to the database
// in one multi-row upsert (split in chunks of at most 256 rows), and the attempts in one
// multi-row insert. A stored row keeps its ID and CreatedAt; its non-empty Topic,
// Backend, Model, ObjectID, Change, CorrelationID, Payload and Metadata are never
// replaced.
//
// Write fills in the changes it is given: an empty Event.ID becomes the id the row is
// written with (a new ULID, or the id of an earlier change of the same row in the
// batch), a zero CreatedAt or UpdatedAt the time of the write. A non-empty Event.ID must
// be a ULID. Every change needs a MessageUUID, a valid Direction and a valid Status.
func (s *SQLStore) Write(ctx context.Context, changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	rows, attempts, err := coalesce(changes, time.Now())
	if err != nil {
		return fmt.Errorf("modelevent: write %d changes: %w", len(changes), err)
	}
	if err := s.write(ctx, rows, attempts); err != nil {
		return fmt.Errorf("modelevent: write %d changes: %w", len(changes), err)
	}
	return nil
}

// WriteTx is Write inside the caller's transaction tx: the rows commit or roll back
// with it (a transactional outbox writes its produced rows this way). tx must belong to
// a database that holds the store's tables, in the store's dialect; it may come from
// another *sql.DB than the store's. WriteTx neither commits nor rolls back tx; after an
// error the caller must roll it back.
func (s *SQLStore) WriteTx(ctx context.Context, tx *sql.Tx, changes []Change) error {
	if tx == nil {
		return errors.New("modelevent: write in transaction: nil *sql.Tx")
	}
	if len(changes) == 0 {
		return nil
	}
	rows, attempts, err := coalesce(changes, time.Now())
	if err != nil {
		return fmt.Errorf("modelevent: write %d changes in transaction: %w", len(changes), err)
	}
	bounds, _, attemptBounds, _ := chunks(rows, attempts)
	if err := s.writeIn(ctx, tx, false, bounds, attemptBounds, rows, attempts); err != nil {
		return fmt.Errorf("modelevent: write %d changes in transaction: %w", len(changes), err)
	}
	return nil
}

// chunks returns the end of each upsert chunk of rows (at most maxEventRows rows and,
// past the first row, at most maxPayloadBytes of payload per statement), the row count
// of each, and the row counts of the attempt inserts.
func chunks(rows []*ModelEvent, attempts []attemptRow) (bounds, eventSizes, attemptBounds, attemptSizes []int) {
	for start := 0; start < len(rows); {
		// Chunks are powers of two (37 rows: 32, 4, 1), so a handful of statements,
		// prepared once, serve every batch size.
		limit := pow2Floor(min(len(rows)-start, maxEventRows))
		end, size := start, 0
		for end < len(rows) && end-start < limit && (end == start || size+len(rows[end].Payload) <= maxPayloadBytes) {
			size += len(rows[end].Payload)
			end++
		}
		bounds = append(bounds, end)
		eventSizes = append(eventSizes, end-start)
		start = end
	}
	for start := 0; start < len(attempts); {
		n := pow2Floor(min(len(attempts)-start, maxAttemptRows))
		start += n
		attemptBounds = append(attemptBounds, start)
		attemptSizes = append(attemptSizes, n)
	}
	return bounds, eventSizes, attemptBounds, attemptSizes
}

// pow2Floor returns the largest power of two ≤ n (n ≥ 1).
func pow2Floor(n int) int {
	p := 1
	for p*2 <= n {
		p *= 2
	}
	return p
}

func (s *SQLStore) write(ctx context.Context, rows []*ModelEvent, attempts []attemptRow) error {
	bounds, eventSizes, attemptBounds, attemptSizes := chunks(rows, attempts)
	s.prepareInserts(ctx, stmtEvents, eventSizes)
	s.prepareInserts(ctx, stmtAttempts, attemptSizes)

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := s.writeIn(ctx, tx, true, bounds, attemptBounds, rows, attempts); err != nil {
		return err
	}
	return tx.Commit()
}

// writeIn runs the upserts and attempt inserts of a write in tx; ownTx says whether tx
// is a transaction of s.db (and may use its prepared statements).
func (s *SQLStore) writeIn(ctx context.Context, tx *sql.Tx, ownTx bool, bounds, attemptBounds []int, rows []*ModelEvent, attempts []attemptRow) error {
	start := 0
	for _, end := range bounds {
		if err := s.upsertEvents(ctx, tx, ownTx, rows[start:end]); err != nil {
			return err
		}
		start = end
	}
	start = 0
	for _, end := range attemptBounds {
		if err := s.insertAttempts(ctx, tx, ownTx, attempts[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

func (s *SQLStore) upsertEvents(ctx context.Context, tx *sql.Tx, ownTx bool, rows []*ModelEvent) error {
	if s.dialect.name == DialectPostgres && len(rows) >= pgArrayMinRows {
		return s.upsertEventsArrays(ctx, tx, rows)
	}
	args := make([]any, 0, len(rows)*numEventColumns)
	for _, e := range rows {
		payload := e.Payload
		if payload == nil {
			payload = []byte{}
		}
		meta, err := encodeMetadata(e.Metadata)
		if err != nil {
			return fmt.Errorf("event %s: %w", e.MessageUUID, err)
		}
		args = append(args, e.ID, e.MessageUUID, string(e.Direction), e.Handler, e.Topic, e.Model, e.Backend,
			payload, meta, string(e.Status), e.Attempts, cleanText(e.LastError), e.CorrelationID,
			e.CreatedAt.UnixMicro(), e.UpdatedAt.UnixMicro(), e.ObjectID, string(e.Change))
	}
	if err := s.exec(ctx, tx, ownTx, stmtEvents, len(rows), args); err != nil {
		return fmt.Errorf("upsert %d events: %w", len(rows), err)
	}
	return nil
}

// pgArrayMinRows is the batch size from which PostgreSQL gets column arrays instead
// of a VALUES list: measured, a handful of rows is faster as VALUES.
const pgArrayMinRows = 16

// pgUpsertEvents inserts one row per element of 17 column arrays: one statement text
// (prepared once per connection by pgx) whatever the batch size, and next to no
// planning, where a VALUES list of n rows has 17n parameters to bind and plan.
const pgUpsertEvents = `INSERT INTO eventbus_events (` + eventColumns + `) SELECT * FROM unnest(` +
	`$1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[], $6::varchar[], $7::varchar[], ` +
	`$8::bytea[], $9::text[], $10::varchar[], $11::int[], $12::text[], $13::varchar[], $14::bigint[], $15::bigint[], ` +
	`$16::varchar[], $17::varchar[])` +
	onConflictUpsert

const pgInsertAttempts = `INSERT INTO eventbus_attempts (` + attemptColumns + `) SELECT * FROM unnest(` +
	`$1::varchar[], $2::varchar[], $3::varchar[], $4::bigint[], $5::bigint[], $6::text[])`

// upsertEventsArrays is upsertEvents for PostgreSQL.
func (s *SQLStore) upsertEventsArrays(ctx context.Context, tx *sql.Tx, rows []*ModelEvent) error {
	n := len(rows)
	ids, uuids, dirs, handlers, topics, models, backends := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	payloads, metas, statuses, lastErrs, corrs := make([][]byte, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	attempts, created, updated := make([]int64, n), make([]int64, n), make([]int64, n)
	objectIDs, changeTypes := make([]string, n), make([]string, n)
	for i, e := range rows {
		meta, err := encodeMetadata(e.Metadata)
		if err != nil {
			return fmt.Errorf("event %s: %w", e.MessageUUID, err)
		}
		payloads[i] = e.Payload
		if payloads[i] == nil {
			payloads[i] = []byte{}
		}
		ids[i], uuids[i], dirs[i], handlers[i], topics[i], models[i], backends[i] =
			e.ID, e.MessageUUID, string(e.Direction), e.Handler, e.Topic, e.Model, e.Backend
		metas[i], statuses[i], attempts[i], lastErrs[i], corrs[i] =
			meta, string(e.Status), int64(e.Attempts), cleanText(e.LastError), e.CorrelationID
		created[i], updated[i] = e.CreatedAt.UnixMicro(), e.UpdatedAt.UnixMicro()
		objectIDs[i], changeTypes[i] = e.ObjectID, string(e.Change)
	}
	if _, err := tx.ExecContext(ctx, pgUpsertEvents, ids, uuids, dirs, handlers, topics, models, backends,
		payloads, metas, statuses, attempts, lastErrs, corrs, created, updated, objectIDs, changeTypes); err != nil {
		return fmt.Errorf("upsert %d events: %w", n, err)
	}
	return nil
}

func (s *SQLStore) insertAttempts(ctx context.Context, tx *sql.Tx, ownTx bool, rows []attemptRow) error {
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
	args := make([]any, 0, len(rows)*numAttemptColumns)
	for _, a := range rows {
		args = append(args, a.key.uuid, string(a.key.direction), a.key.handler,
			a.StartedAt.UnixMicro(), a.Duration.Microseconds(), cleanText(a.Error))
	}
	if err := s.exec(ctx, tx, ownTx, stmtAttempts, len(rows), args); err != nil {
		return fmt.Errorf("insert %d attempts: %w", len(rows), err)
	}
	return nil
}

type stmtKind int

const (
	stmtEvents stmtKind = iota
	stmtAttempts
)

type sqlKey struct {
	dialect string
	kind    stmtKind
	rows    int
}

// insertSQLs caches the text of the multi-row inserts by dialect, kind and row count.
var insertSQLs sync.Map // sqlKey → string

// insertSQL returns the multi-row insert of n rows: the events upsert or the attempts
// insert.
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
			if d.dollar {
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(p))
			} else {
				b.WriteByte('?')
			}
		}
		b.WriteByte(')')
	}
	if kind == stmtEvents {
		b.WriteString(d.upsert)
	}
	q := b.String()
	insertSQLs.Store(key, q)
	return q
}

// coalesce validates changes, fills in their empty ids and times, and merges the
// changes of one row in order. It returns the rows in order of first appearance and
// the attempts in order.
func coalesce(changes []Change, now time.Time) ([]*ModelEvent, []attemptRow, error) {
	now = now.UTC()
	rows := make([]*ModelEvent, 0, len(changes))
	var index map[eventKey]int
	if len(changes) > 1 {
		index = make(map[eventKey]int, len(changes))
	}
	nAttempts := 0
	for i := range changes {
		e := &changes[i].Event
		if err := validateChange(e); err != nil {
			return nil, nil, fmt.Errorf("change %d: %w", i, err)
		}
		nAttempts += len(changes[i].NewAttempts)
		if e.UpdatedAt.IsZero() {
			e.UpdatedAt = now
		}
		k := eventKey{e.MessageUUID, e.Direction, e.Handler}
		j, seen := index[k]
		if !seen {
			row := *e
			row.History = nil
			if index != nil {
				index[k] = len(rows)
			}
			rows = append(rows, &row)
			continue
		}
		mergeInto(rows[j], e)
	}
	for _, r := range rows {
		if r.ID == "" {
			r.ID = ulid.Make().String()
		}
		if r.CreatedAt.IsZero() {
			r.CreatedAt = now
		}
	}
	attempts := make([]attemptRow, 0, nAttempts)
	for i := range changes {
		e := &changes[i].Event
		k := eventKey{e.MessageUUID, e.Direction, e.Handler}
		r := rows[0]
		if index != nil {
			r = rows[index[k]]
		}
		if e.ID == "" {
			e.ID = r.ID
		}
		if e.CreatedAt.IsZero() {
			e.CreatedAt = r.CreatedAt
		}
		for _, a := range changes[i].NewAttempts {
			attempts = append(attempts, attemptRow{key: k, Attempt: a})
		}
	}
	return rows, attempts, nil
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
	for _, c := range columnLimits {
		if v := c.get(e); len(v) > c.max && utf8.RuneCountInString(v) > c.max {
			return fmt.Errorf("message %s: %s longer than %d characters", e.MessageUUID, c.name, c.max)
		}
	}
	return nil
}

// cleanText makes s storable in a text column of every dialect: valid UTF-8 without NUL.
func cleanText(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func encodeMetadata(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode metadata: %w", err)
	}
	return string(b), nil
}

// ValidID reports whether id is the id of a ModelEvent: a ULID, 26 characters of
// Crockford's base32 (either case), the first at most '7'.
func ValidID(id string) bool {
	_, ok := normalizeID(id)
	return ok
}

// normalizeID upper-cases id and reports whether it is a ULID: 26 characters of
// Crockford's base32, the first at most '7'.
func normalizeID(id string) (string, bool) {
	if len(id) != ulid.EncodedSize {
		return "", false
	}
	if id[0] > '7' || id[0] < '0' {
		return "", false
	}
	var buf [ulid.EncodedSize]byte
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		switch {
		case c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U':
		default:
			return "", false
		}
		buf[i] = c
	}
	return string(buf[:]), true
}

// selectEvents selects the columns scanEvent reads.
const selectEvents = `SELECT ` + eventColumns + ` FROM eventbus_events`

type scanner interface {
	Scan(dest ...any) error
}

func scanEvent(sc scanner) (ModelEvent, error) {
	var e ModelEvent
	var direction, status, meta, change string
	var created, updated int64
	if err := sc.Scan(&e.ID, &e.MessageUUID, &direction, &e.Handler, &e.Topic, &e.Model, &e.Backend,
		&e.Payload, &meta, &status, &e.Attempts, &e.LastError, &e.CorrelationID, &created, &updated,
		&e.ObjectID, &change); err != nil {
		return e, err
	}
	e.Direction, e.Status, e.Change = Direction(direction), Status(status), ChangeType(change)
	if len(e.Payload) == 0 {
		e.Payload = nil
	}
	if meta != "" && meta != "{}" {
		if err := json.Unmarshal([]byte(meta), &e.Metadata); err != nil {
			return e, fmt.Errorf("event %s: decode metadata: %w", e.ID, err)
		}
	}
	e.CreatedAt = time.UnixMicro(created).UTC()
	e.UpdatedAt = time.UnixMicro(updated).UTC()
	return e, nil
}

// Get returns the event with the given id and its attempts, oldest first. An unknown or
// malformed id is an error wrapping ErrNotFound.
func (s *SQLStore) Get(ctx context.Context, id string) (ModelEvent, error) {
	nid, ok := normalizeID(id)
	if !ok {
		return ModelEvent{}, fmt.Errorf("%w: malformed id %q (an event id is a 26-character ULID)", ErrNotFound, id)
	}
	e, err := scanEvent(s.db.QueryRowContext(ctx, s.dialect.rebind(selectEvents+` WHERE id = ?`), nid))
	if errors.Is(err, sql.ErrNoRows) {
		return ModelEvent{}, fmt.Errorf("%w: id %q", ErrNotFound, id)
	}
	if err != nil {
		return ModelEvent{}, fmt.Errorf("modelevent: get %s: %w", nid, err)
	}
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(`SELECT started_at, duration_us, error FROM eventbus_attempts`+
		` WHERE message_uuid = ? AND direction = ? AND handler = ? ORDER BY id`),
		e.MessageUUID, string(e.Direction), e.Handler)
	if err != nil {
		return ModelEvent{}, fmt.Errorf("modelevent: get %s: attempts: %w", nid, err)
	}
	defer rows.Close()
	for rows.Next() {
		var started, dur int64
		var a Attempt
		if err := rows.Scan(&started, &dur, &a.Error); err != nil {
			return ModelEvent{}, fmt.Errorf("modelevent: get %s: attempts: %w", nid, err)
		}
		a.StartedAt = time.UnixMicro(started).UTC()
		a.Duration = time.Duration(dur) * time.Microsecond
		e.History = append(e.History, a)
	}
	if err := rows.Err(); err != nil {
		return ModelEvent{}, fmt.Errorf("modelevent: get %s: attempts: %w", nid, err)
	}
	return e, nil
}

// Page sizes of List.
const (
	defaultListLimit = 50
	maxListLimit     = 1000
)

// where returns the WHERE clause (with ? placeholders, empty for no condition) and
// arguments selecting f.
func (s *SQLStore) where(f Filter) (string, []any, error) {
	var conds []string
	var args []any
	eq := func(col, v string) {
		if v != "" {
			conds = append(conds, col+" = ?")
			args = append(args, v)
		}
	}
	if f.Direction != "" && !f.Direction.Valid() {
		return "", nil, fmt.Errorf("unknown direction %q (accepted: produced, consumed)", f.Direction)
	}
	eq("direction", string(f.Direction))
	eq("topic", f.Topic)
	eq("model", f.Model)
	eq("object_id", f.ObjectID)
	eq("change_type", string(f.Change))
	eq("handler", f.Handler)
	eq("correlation_id", f.CorrelationID)
	eq("message_uuid", f.MessageUUID)
	if len(f.Statuses) > 0 {
		ph := make([]string, len(f.Statuses))
		for i, st := range f.Statuses {
			if !st.Valid() {
				return "", nil, fmt.Errorf("unknown status %q", st)
			}
			ph[i] = "?"
			args = append(args, string(st))
		}
		conds = append(conds, "status IN ("+strings.Join(ph, ", ")+")")
	}
	// Ids are ULIDs minted when a row is first recorded, never before its created_at
	// (but possibly long after, for a created_at given by the caller): a lower bound on
	// id, with a second's margin, lets the primary key serve "since", so created_at
	// needs no index of its own.
	if !f.Since.IsZero() {
		conds = append(conds, "id >= ?", "created_at >= ?")
		args = append(args, idFloor(f.Since.Add(-time.Second)), f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		conds = append(conds, "created_at < ?")
		args = append(args, f.Until.UnixMicro())
	}
	if f.Text != "" {
		c, a := s.dialect.textMatch(f.Text)
		conds = append(conds, c)
		args = append(args, a...)
	}
	if len(conds) == 0 {
		return "", nil, nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args, nil
}

// List returns the events matching f, newest first (by id, which sorts by creation
// time), opts.Limit at a time (50 by default, at most 1000). Pass the NextCursor of a
// page as opts.Cursor to get the next one; pages neither repeat nor skip rows, even
// while new rows are written. History is not filled.
func (s *SQLStore) List(ctx context.Context, f Filter, opts ListOptions) (Page, error) {
	limit := opts.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	where, args, err := s.where(f)
	if err != nil {
		return Page{}, fmt.Errorf("modelevent: list: %w", err)
	}
	if opts.Cursor != "" {
		cur, ok := normalizeID(opts.Cursor)
		if !ok {
			return Page{}, fmt.Errorf("modelevent: list: malformed cursor %q", opts.Cursor)
		}
		if where == "" {
			where = " WHERE id < ?"
		} else {
			where += " AND id < ?"
		}
		args = append(args, cur)
	}
	q := s.dialect.rebind(selectEvents + where + " ORDER BY id DESC LIMIT " + strconv.Itoa(limit+1))
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return Page{}, fmt.Errorf("modelevent: list: %w", err)
	}
	defer rows.Close()
	page := Page{Events: make([]ModelEvent, 0, min(limit, 64))}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return Page{}, fmt.Errorf("modelevent: list: %w", err)
		}
		page.Events = append(page.Events, e)
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("modelevent: list: %w", err)
	}
	if len(page.Events) > limit {
		page.Events = page.Events[:limit]
		page.NextCursor = page.Events[limit-1].ID
	}
	return page, nil
}

// Stats counts the events matching f: in total, by status, and by topic and direction
// (sorted by topic, then direction). The maps hold only the statuses that occur.
func (s *SQLStore) Stats(ctx context.Context, f Filter) (Stats, error) {
	where, args, err := s.where(f)
	if err != nil {
		return Stats{}, fmt.Errorf("modelevent: stats: %w", err)
	}
	q := s.dialect.rebind(`SELECT topic, direction, status, COUNT(*) FROM eventbus_events` + where +
		` GROUP BY topic, direction, status`)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return Stats{}, fmt.Errorf("modelevent: stats: %w", err)
	}
	defer rows.Close()
	st := Stats{ByStatus: map[Status]int64{}, ByTopic: []TopicCount{}}
	byTopic := map[[2]string]*TopicCount{}
	for rows.Next() {
		var topic, direction, status string
		var n int64
		if err := rows.Scan(&topic, &direction, &status, &n); err != nil {
			return Stats{}, fmt.Errorf("modelevent: stats: %w", err)
		}
		st.Total += n
		st.ByStatus[Status(status)] += n
		tc := byTopic[[2]string{topic, direction}]
		if tc == nil {
			tc = &TopicCount{Topic: topic, Direction: Direction(direction), ByStatus: map[Status]int64{}}
			byTopic[[2]string{topic, direction}] = tc
		}
		tc.Total += n
		tc.ByStatus[Status(status)] += n
	}
	if err := rows.Err(); err != nil {
		return Stats{}, fmt.Errorf("modelevent: stats: %w", err)
	}
	for _, tc := range byTopic {
		st.ByTopic = append(st.ByTopic, *tc)
	}
	sort.Slice(st.ByTopic, func(i, j int) bool {
		a, b := st.ByTopic[i], st.ByTopic[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Direction < b.Direction
	})
	return st, nil
}

// idFloor returns the smallest ULID of t's millisecond.
func idFloor(t time.Time) string {
	if t.Before(time.UnixMilli(0)) {
		t = time.UnixMilli(0)
	}
	var u ulid.ULID
	_ = u.SetTime(ulid.Timestamp(t))
	return u.String()
}
