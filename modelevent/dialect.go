package modelevent

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
)

// The store dialects accepted by Open and NewSQLStore.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
	DialectMySQL    = "mysql"
)

// dialect holds what differs between the SQL databases the store runs on.
type dialect struct {
	name string
	// sqlDriver is the database/sql driver name Open uses.
	sqlDriver string
	// dollar is true when placeholders are $1, $2, … (PostgreSQL).
	dollar bool
	// upsert is the clause appended to the multi-row insert of eventbus_events.
	upsert string
	// txDDL is true when DDL runs inside a transaction (SQLite, PostgreSQL).
	txDDL bool
	// skipsExisting is true when an insert can skip the rows that exist (ON CONFLICT DO
	// NOTHING) and count those it inserted, so new rows need no look-up before they
	// are written (SQLite, PostgreSQL).
	skipsExisting bool
	// nullAsEmpty is true when the multi-row inserts take NULL for an empty text
	// value and store '' (coalesce(?, '')), and Write passes empty text as NULL:
	// SQLite, whose driver copies every text argument, "" too, into C memory.
	nullAsEmpty bool
}

var dialects = map[string]*dialect{
	DialectSQLite: {
		name: DialectSQLite, sqlDriver: "sqlite", txDDL: true, skipsExisting: true, nullAsEmpty: true,
		upsert: onConflictUpsert,
	},
	DialectPostgres: {
		name: DialectPostgres, sqlDriver: "pgx", dollar: true, txDDL: true, skipsExisting: true,
		upsert: onConflictUpsert,
	},
	DialectMySQL: {
		name: DialectMySQL, sqlDriver: "mysql",
		// MariaDB has no "AS new" row alias, so VALUES(col) it is. Each assignment
		// reads only its own column, so MySQL's left-to-right evaluation is harmless.
		upsert: ` ON DUPLICATE KEY UPDATE` +
			` status = VALUES(status),` +
			` attempts = attempts + VALUES(attempts),` +
			` last_error = IF(VALUES(last_error) = '', last_error, VALUES(last_error)),` +
			` updated_at = VALUES(updated_at),` +
			` meta_columns = IF(metadata = '' OR metadata = '{}', VALUES(meta_columns), meta_columns)` +
			` | IF(correlation_id = '', VALUES(meta_columns) & 16, 0),` +
			` duration_us = IF(VALUES(started_at) = 0, duration_us, VALUES(duration_us)),` +
			` started_at = IF(VALUES(started_at) = 0, started_at, VALUES(started_at)),` +
			` topic = IF(topic = '', VALUES(topic), topic),` +
			` backend = IF(backend = '', VALUES(backend), backend),` +
			` model = IF(model = '', VALUES(model), model),` +
			` object_id = IF(object_id = '', VALUES(object_id), object_id),` +
			` change_type = IF(change_type = '', VALUES(change_type), change_type),` +
			` correlation_id = IF(correlation_id = '', VALUES(correlation_id), correlation_id),` +
			` trace_id = IF(trace_id = '', VALUES(trace_id), trace_id),` +
			` payload = IF(LENGTH(payload) = 0, VALUES(payload), payload),` +
			` metadata = IF(metadata = '' OR metadata = '{}', VALUES(metadata), metadata)`,
	},
}

// onConflictNothing makes the insert of new events skip the rows that exist (SQLite and
// PostgreSQL).
const onConflictNothing = ` ON CONFLICT (message_uuid, handler) DO NOTHING`

// onConflictUpsert is the SQLite and PostgreSQL form of the events upsert.
const onConflictUpsert = ` ON CONFLICT (message_uuid, handler) DO UPDATE SET` +
	` status = excluded.status,` +
	` started_at = CASE WHEN excluded.started_at = 0 THEN eventbus_events.started_at ELSE excluded.started_at END,` +
	` duration_us = CASE WHEN excluded.started_at = 0 THEN eventbus_events.duration_us ELSE excluded.duration_us END,` +
	` meta_columns = (CASE WHEN eventbus_events.metadata IN ('', '{}') THEN excluded.meta_columns ELSE eventbus_events.meta_columns END)` +
	` | (CASE WHEN eventbus_events.correlation_id = '' THEN excluded.meta_columns & 16 ELSE 0 END),` +
	` attempts = eventbus_events.attempts + excluded.attempts,` +
	` last_error = CASE WHEN excluded.last_error = '' THEN eventbus_events.last_error ELSE excluded.last_error END,` +
	` updated_at = excluded.updated_at,` +
	` topic = CASE WHEN eventbus_events.topic = '' THEN excluded.topic ELSE eventbus_events.topic END,` +
	` backend = CASE WHEN eventbus_events.backend = '' THEN excluded.backend ELSE eventbus_events.backend END,` +
	` model = CASE WHEN eventbus_events.model = '' THEN excluded.model ELSE eventbus_events.model END,` +
	` object_id = CASE WHEN eventbus_events.object_id = '' THEN excluded.object_id ELSE eventbus_events.object_id END,` +
	` change_type = CASE WHEN eventbus_events.change_type = '' THEN excluded.change_type ELSE eventbus_events.change_type END,` +
	` correlation_id = CASE WHEN eventbus_events.correlation_id = '' THEN excluded.correlation_id ELSE eventbus_events.correlation_id END,` +
	` trace_id = CASE WHEN eventbus_events.trace_id = '' THEN excluded.trace_id ELSE eventbus_events.trace_id END,` +
	` payload = CASE WHEN length(eventbus_events.payload) = 0 THEN excluded.payload ELSE eventbus_events.payload END,` +
	` metadata = CASE WHEN eventbus_events.metadata IN ('', '{}') THEN excluded.metadata ELSE eventbus_events.metadata END`

func lookupDialect(name string) (*dialect, error) {
	d, ok := dialects[name]
	if !ok {
		return nil, fmt.Errorf("modelevent: unknown store driver %q (accepted: sqlite, postgres, mysql)", name)
	}
	return d, nil
}

// rebind turns the ? placeholders of query into $n for PostgreSQL. The queries of this
// package hold no ? inside string literals.
func (d *dialect) rebind(query string) string {
	if !d.dollar || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// textMatch returns the SQL condition and arguments of a Filter.Text substring match
// over id, message_uuid, payload and last_error. Matching is case-sensitive and
// byte-exact on the payload. Text that cannot occur in a text column (invalid UTF-8, or
// NUL, which PostgreSQL rejects) is matched against the payload only.
func (d *dialect) textMatch(text string) (string, []any) {
	textCols := utf8.ValidString(text) && !strings.ContainsRune(text, 0)
	var conds []string
	var args []any
	switch d.name {
	case DialectMySQL:
		pattern := "%" + escapeLike(text) + "%"
		if textCols {
			conds = append(conds, "id LIKE ? ESCAPE '!'", "message_uuid LIKE ? ESCAPE '!'", "last_error LIKE ? ESCAPE '!'")
			args = append(args, pattern, pattern, pattern)
		}
		conds = append(conds, "payload LIKE ? ESCAPE '!'")
		args = append(args, []byte(pattern))
	case DialectPostgres:
		if textCols {
			conds = append(conds, "strpos(id, ?) > 0", "strpos(message_uuid, ?) > 0", "strpos(last_error, ?) > 0")
			args = append(args, text, text, text)
		}
		conds = append(conds, "position(?::bytea in payload) > 0")
		args = append(args, []byte(text))
	default:
		if textCols {
			conds = append(conds, "instr(id, ?) > 0", "instr(message_uuid, ?) > 0", "instr(last_error, ?) > 0")
			args = append(args, text, text, text)
		}
		conds = append(conds, "instr(payload, ?) > 0")
		args = append(args, []byte(text))
	}
	return "(" + strings.Join(conds, " OR ") + ")", args
}

// escapeLike escapes the LIKE wildcards of s with '!', the ESCAPE character used above
// (a backslash would depend on the server's NO_BACKSLASH_ESCAPES mode).
func escapeLike(s string) string {
	if !strings.ContainsAny(s, "!%_") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '!', '%', '_':
			b.WriteByte('!')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// prepareDSN adds to dsn the settings the store relies on, when dsn lacks them. It
// returns the DSN to open and whether the database lives in memory (which needs a
// single connection, since every connection would get its own database).
func (d *dialect) prepareDSN(dsn string) (string, bool, error) {
	switch d.name {
	case DialectSQLite:
		out, mem := sqliteDSN(dsn)
		return out, mem, nil
	case DialectMySQL:
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return "", false, fmt.Errorf("modelevent: parse mysql dsn %q: %w", redactDSN(d.name, dsn), err)
		}
		cfg.ParseTime = true
		if !strings.Contains(dsn, "interpolateParams=") {
			// One round trip per statement instead of prepare, execute, close.
			cfg.InterpolateParams = true
		}
		return cfg.FormatDSN(), false, nil
	}
	return dsn, false, nil
}

// sqliteDSN adds WAL, synchronous NORMAL, a busy timeout, foreign keys and immediate
// transactions (writers queue on the busy timeout instead of failing on a lock upgrade)
// to a SQLite DSN that does not set them.
func sqliteDSN(dsn string) (string, bool) {
	lower := strings.ToLower(dsn)
	mem := dsn == "" || strings.HasPrefix(lower, ":memory:") || strings.HasPrefix(lower, "file::memory:") ||
		strings.Contains(lower, "mode=memory")
	has := func(keys ...string) bool {
		for _, k := range keys {
			if strings.Contains(lower, k) {
				return true
			}
		}
		return false
	}
	var add []string
	if !has("busy_timeout", "_timeout=") {
		add = append(add, "_pragma=busy_timeout(5000)")
	}
	if !has("journal_mode", "_journal=") && !mem {
		add = append(add, "_pragma=journal_mode(WAL)")
	}
	if !has("synchronous", "_sync=") {
		add = append(add, "_pragma=synchronous(NORMAL)")
	}
	if !has("wal_autocheckpoint") && !mem {
		// Fewer, larger checkpoints: a page rewritten by many commits is copied back
		// (and synced) once per checkpoint instead of once per 1000 WAL pages.
		add = append(add, "_pragma=wal_autocheckpoint(8000)")
	}
	if !has("temp_store") {
		// Upserts inside a transaction keep a statement journal; in memory it costs no
		// write syscalls.
		add = append(add, "_pragma=temp_store(MEMORY)")
	}
	if !has("foreign_keys", "_fk=") {
		add = append(add, "_pragma=foreign_keys(1)")
	}
	if !has("_txlock=") {
		add = append(add, "_txlock=immediate")
	}
	if len(add) == 0 {
		return dsn, mem
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	if dsn == "" {
		dsn = ":memory:"
	}
	return dsn + sep + strings.Join(add, "&"), mem
}

var (
	kvPassword  = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)`)
	mysqlUserPw = regexp.MustCompile(`^([^:@/]*):(.*)@`)
)

// redactDSN returns dsn with any password replaced by "xxxxx", for error messages.
func redactDSN(driver, dsn string) string {
	if strings.Contains(dsn, "://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			if q.Has("password") {
				q.Set("password", "xxxxx")
				u.RawQuery = q.Encode()
			}
			return u.Redacted()
		}
	}
	if driver == DialectMySQL {
		dsn = mysqlUserPw.ReplaceAllString(dsn, "$1:xxxxx@")
	}
	return kvPassword.ReplaceAllString(dsn, "${1}xxxxx")
}
