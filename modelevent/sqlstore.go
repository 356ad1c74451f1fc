package modelevent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

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

	local localClaims // claims.go: SQLite's run claims, in this process
}

var _ Store = (*SQLStore)(nil)

// pingTimeout bounds Open's connection check when ctx has no deadline.
const pingTimeout = 10 * time.Second

// Open opens the store of the named driver — "sqlite", "postgres" or "mysql" — at dsn,
// checks that the database answers, and returns it; call Migrate to create the schema.
// The driver must be linked into the program by a blank import of its package, as
// database/sql drivers are: modelevent/sqlite (package bus imports it: SQLite is the
// embedded default), modelevent/postgres (pgx) or modelevent/mysql (go-sql-driver, for
// MySQL and MariaDB). Each package documents its DSN and the settings the store adds to
// it. A driver that is not linked is an error naming the import to add.
//
// If the database does not answer before ctx ends (or within 10s when ctx has no
// deadline), Open returns an error naming the driver and the DSN, password redacted.
func Open(ctx context.Context, driver, dsn string) (*SQLStore, error) {
	d, err := lookupDialect(driver)
	if err != nil {
		return nil, err
	}
	drv, err := lookupDriver(driver)
	if err != nil {
		return nil, err
	}
	db, err := drv.Open(dsn)
	if err != nil {
		return nil, fmt.Errorf("modelevent: open %s store %q: %w", driver, redactDSN(driver, dsn), err)
	}
	// database/sql keeps 2 idle connections by default: the recorder's writer, the
	// idempotency look-ups and the scheduler beside it would open and close one per
	// query (a few ms each on PostgreSQL). An in-memory SQLite database, which its
	// driver limits to one connection, keeps that one (database/sql caps the idle
	// connections at the open ones).
	db.SetMaxIdleConns(16)
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
// none of the DSN settings Open adds are applied. db may come from any database/sql
// driver; a row the database refuses for its data is told apart from a failed
// statement (and poisons that row alone) when its error comes from a linked store
// driver.
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

// WriteConcurrency is how many writes the store takes well at once: 4 on PostgreSQL,
// where concurrent commits on separate connections overlap their round trips; 1 on
// SQLite (one writer at a time) and on MySQL (concurrent upserts there take gap locks
// that can deadlock, and several writers were not measured). middleware.Recorder runs
// as many writers.
func (s *SQLStore) WriteConcurrency() int {
	if s.dialect.name == DialectPostgres {
		return 4
	}
	return 1
}

// Close closes the database if Open opened it. It is idempotent.
func (s *SQLStore) Close() error {
	s.closeOnce.Do(func() {
		s.stmtMu.Lock()
		for _, st := range s.stmts {
			_ = st.Close()
		}
		s.stmts = nil
		s.stmtMu.Unlock()
		s.local.closeChecks() // claims.go
		if s.ownDB {
			s.closeErr = s.db.Close()
		}
	})
	return s.closeErr
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
	canonical := true
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U') {
			canonical = false
			break
		}
	}
	if canonical {
		return id, true // the common case, a ULID's String: no copy
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
	e, _, err := scanEventInline(sc)
	return e, err
}

// scanEventInline scans a row of selectEvents and returns the attempt the row keeps
// inline (zero StartedAt when it has none).
func scanEventInline(sc scanner) (ModelEvent, Attempt, error) {
	var e ModelEvent
	var direction, status, meta, change string
	var created, updated, started, dur int64
	var metaCols int
	if err := sc.Scan(&e.ID, &e.MessageUUID, &direction, &e.Handler, &e.Topic, &e.Model, &e.Backend,
		&e.Payload, &meta, &status, &e.Attempts, &e.LastError, &e.CorrelationID, &created, &updated,
		&e.ObjectID, &change, &started, &dur, &metaCols, &e.TraceID); err != nil {
		return e, Attempt{}, err
	}
	e.Direction, e.Status, e.Change = Direction(direction), Status(status), ChangeType(change)
	if len(e.Payload) == 0 {
		e.Payload = nil
	}
	if err := restoreMetadata(&e, meta, metaCols); err != nil {
		return e, Attempt{}, err
	}
	e.CreatedAt = time.UnixMicro(created).UTC()
	e.UpdatedAt = time.UnixMicro(updated).UTC()
	var inline Attempt
	if started != 0 {
		inline = Attempt{StartedAt: time.UnixMicro(started).UTC(), Duration: time.Duration(dur) * time.Microsecond}
	}
	return e, inline, nil
}

// Get returns the event with the given id and its attempts in History, oldest first
// (empty, not nil, when none was kept). An unknown id is an error wrapping ErrNotFound;
// one that is no event id (a message UUID, say) wraps ErrMalformedID too and says so
// (CheckEventID).
func (s *SQLStore) Get(ctx context.Context, id string) (ModelEvent, error) {
	nid, ok := normalizeID(id)
	if !ok {
		return ModelEvent{}, fmt.Errorf("modelevent: get: %w", CheckEventID(id))
	}
	e, inline, err := scanEventInline(s.db.QueryRowContext(ctx, s.dialect.rebind(selectEvents+` WHERE id = ?`), nid))
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
	if len(e.History) == 0 && !inline.StartedAt.IsZero() {
		// A delivery that succeeded at once keeps its one attempt in the row.
		inline.Error = ""
		if e.Status != StatusSucceeded && e.Status != StatusPublished {
			inline.Error = e.LastError
		}
		e.History = []Attempt{inline}
	}
	if e.History == nil {
		e.History = []Attempt{} // read, and empty: a detail's "history" is [] (json.go)
	}
	if n, err := s.duplicatesOf(ctx, nid); err == nil { // claims.go; a store before 0006 has none
		e.Duplicates = n
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
	// The indexes on handler, model, object_id, correlation_id and status are partial
	// (they leave out the common values: see migration 0004): a query uses one only
	// when its WHERE clause states the index's condition, so the conditions below
	// repeat it where the value asked for implies it.
	eq("direction", string(f.Direction))
	eq("topic", f.Topic)
	eq("model", f.Model)
	if f.Model != "" && f.ObjectID == "" {
		conds = append(conds, "model <> ''")
	}
	eq("object_id", f.ObjectID)
	if f.ObjectID != "" {
		conds = append(conds, "object_id <> ''")
	}
	eq("change_type", string(f.Change))
	eq("handler", f.Handler)
	if f.Handler != "" {
		conds = append(conds, "handler <> ''")
	}
	if c := f.CorrelationID; c != "" {
		// Most rows carry their own message UUID as correlation id and store it as a
		// meta_columns bit: those are found through the natural key, the others
		// through the correlation index.
		conds = append(conds, "((message_uuid = ? AND (meta_columns & 16) <> 0) OR (correlation_id = ? AND correlation_id <> ''))")
		args = append(args, c, c)
	}
	eq("message_uuid", f.MessageUUID)
	eq("trace_id", f.TraceID)
	if f.TraceID != "" {
		conds = append(conds, "trace_id <> ''")
	}
	if len(f.Statuses) > 0 {
		ph := make([]string, len(f.Statuses))
		rare := true
		for i, st := range f.Statuses {
			if !st.Valid() {
				return "", nil, fmt.Errorf("unknown status %q", st)
			}
			ph[i] = "?"
			args = append(args, string(st))
			rare = rare && st != StatusSucceeded && st != StatusPublished
		}
		conds = append(conds, "status IN ("+strings.Join(ph, ", ")+")")
		if rare {
			conds = append(conds, "status NOT IN ('succeeded', 'published')")
		}
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
