package modelevent

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var migrationFS embed.FS

// MigrationState is the state of one schema migration in a store's database.
type MigrationState struct {
	// Version is the migration's number, from its file name (0001_init.sql is 1).
	Version int `json:"version"`
	// Name is the rest of the file name ("init"); empty for a version applied by a
	// newer release that this binary does not know.
	Name string `json:"name"`
	// Applied reports whether the migration is recorded as applied.
	Applied bool `json:"applied"`
	// AppliedAt is when it was applied; zero when it is not.
	AppliedAt time.Time `json:"applied_at"`
}

type migration struct {
	version int
	name    string
	stmts   []string
}

// loadMigrations reads the embedded migrations of a dialect, in version order.
func loadMigrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("modelevent: read migrations of %s: %w", dialect, err)
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("modelevent: migration file %s/%s: name must be NNNN_name.sql", dir, name)
		}
		body, err := migrationFS.ReadFile(path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("modelevent: read migration %s/%s: %w", dir, name, err)
		}
		out = append(out, migration{version: v, name: rest, stmts: splitStatements(string(body))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("modelevent: migrations of %s: version %d appears twice", dialect, out[i].version)
		}
	}
	return out, nil
}

// splitStatements splits a migration file into statements: lines starting with "--"
// are comments, and a statement ends with a line ending in ";". Splitting here instead
// of sending the file at once means no driver needs a multi-statement mode.
func splitStatements(body string) []string {
	var stmts []string
	var cur strings.Builder
	for _, line := range strings.Split(body, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS eventbus_schema_migrations (
    version    INT          NOT NULL PRIMARY KEY,
    name       VARCHAR(255) NOT NULL,
    applied_at BIGINT       NOT NULL
)`

// Migrate applies the embedded schema migrations that the database lacks, in version
// order, and records each in eventbus_schema_migrations. It is idempotent and safe to
// run from several processes at once: they serialise on a lock (pg_advisory_lock on
// PostgreSQL, GET_LOCK on MySQL, a BEGIN IMMEDIATE transaction on SQLite). On SQLite
// and PostgreSQL each migration runs in a transaction; MySQL commits DDL implicitly, so
// there every statement of a migration is written to be re-runnable.
func (s *SQLStore) Migrate(ctx context.Context) error {
	migs, err := loadMigrations(s.dialect.name)
	if err != nil {
		return err
	}
	if err := s.migrate(ctx, migs); err != nil {
		return fmt.Errorf("modelevent: migrate %s: %w", s.dialect.name, err)
	}
	return nil
}

func (s *SQLStore) migrate(ctx context.Context, migs []migration) error {
	if s.dialect.name == DialectSQLite {
		return s.migrateSQLite(ctx, migs)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	unlock, err := s.lockMigrations(ctx, conn)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := conn.ExecContext(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("create eventbus_schema_migrations: %w", err)
	}
	applied, err := appliedVersions(ctx, conn)
	if err != nil {
		return err
	}
	for _, m := range migs {
		if _, ok := applied[m.version]; ok {
			continue
		}
		if err := s.applyOne(ctx, conn, m); err != nil {
			return fmt.Errorf("apply %04d_%s: %w", m.version, m.name, err)
		}
	}
	return nil
}

// lockMigrations takes the dialect's cross-process lock on conn and returns its release.
// The lock is scoped to the schema (PostgreSQL) or database (MySQL), so stores in other
// schemas of the same server do not wait for each other.
func (s *SQLStore) lockMigrations(ctx context.Context, conn *sql.Conn) (func(), error) {
	switch s.dialect.name {
	case DialectPostgres:
		const key = `hashtext('eventbus_schema_migrations.' || current_schema())`
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(`+key+`)`); err != nil {
			return nil, fmt.Errorf("take migration lock: %w", err)
		}
		return func() {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+key+`)`)
		}, nil
	case DialectMySQL:
		const name = `LEFT(CONCAT('eventbus_schema_migrations.', COALESCE(DATABASE(), '')), 64)`
		timeout := 300
		if dl, ok := ctx.Deadline(); ok {
			timeout = max(int(time.Until(dl).Seconds()), 1)
		}
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(`+name+`, ?)`, timeout).Scan(&got); err != nil {
			return nil, fmt.Errorf("take migration lock: %w", err)
		}
		if !got.Valid || got.Int64 != 1 {
			return nil, errors.New("take migration lock: GET_LOCK timed out")
		}
		return func() {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT RELEASE_LOCK(`+name+`)`)
		}, nil
	}
	return func() {}, nil
}

// applyOne applies one migration on conn: in a transaction where DDL is
// transactional, statement by statement otherwise.
func (s *SQLStore) applyOne(ctx context.Context, conn *sql.Conn, m migration) error {
	record := s.dialect.rebind(`INSERT INTO eventbus_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`)
	now := time.Now().UnixMicro()
	if !s.dialect.txDDL {
		for _, stmt := range m.stmts {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		_, err := conn.ExecContext(ctx, record, m.version, m.name, now)
		return err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, stmt := range m.stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, record, m.version, m.name, now); err != nil {
		return err
	}
	return tx.Commit()
}

// migrateSQLite applies every missing migration in one BEGIN IMMEDIATE transaction,
// which is the lock: a second process waits on the busy timeout, then sees them applied.
func (s *SQLStore) migrateSQLite(ctx context.Context, migs []migration) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// BEGIN IMMEDIATE by hand: a caller-owned *sql.DB may not set _txlock=immediate.
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	if _, err := conn.ExecContext(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("create eventbus_schema_migrations: %w", err)
	}
	applied, err := appliedVersions(ctx, conn)
	if err != nil {
		return err
	}
	now := time.Now().UnixMicro()
	for _, m := range migs {
		if _, ok := applied[m.version]; ok {
			continue
		}
		for _, stmt := range m.stmts {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("apply %04d_%s: %w", m.version, m.name, err)
			}
		}
		if _, err := conn.ExecContext(ctx, `INSERT INTO eventbus_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, now); err != nil {
			return fmt.Errorf("apply %04d_%s: %w", m.version, m.name, err)
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	done = true
	return nil
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

type appliedMigration struct {
	name      string
	appliedAt int64
}

func appliedVersions(ctx context.Context, q queryer) (map[int]appliedMigration, error) {
	rows, err := q.QueryContext(ctx, `SELECT version, name, applied_at FROM eventbus_schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read eventbus_schema_migrations: %w", err)
	}
	defer rows.Close()
	out := map[int]appliedMigration{}
	for rows.Next() {
		var v int
		var a appliedMigration
		if err := rows.Scan(&v, &a.name, &a.appliedAt); err != nil {
			return nil, fmt.Errorf("read eventbus_schema_migrations: %w", err)
		}
		out[v] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read eventbus_schema_migrations: %w", err)
	}
	return out, nil
}

// MigrationStatus lists the embedded migrations, in version order, with whether each is
// applied to the database, followed by any applied version this binary does not know
// (a newer release migrated the database). A database never migrated reports every
// migration as not applied.
func (s *SQLStore) MigrationStatus(ctx context.Context) ([]MigrationState, error) {
	migs, err := loadMigrations(s.dialect.name)
	if err != nil {
		return nil, err
	}
	exists, err := s.tableExists(ctx, "eventbus_schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("modelevent: migration status: %w", err)
	}
	applied := map[int]appliedMigration{}
	if exists {
		if applied, err = appliedVersions(ctx, s.db); err != nil {
			return nil, fmt.Errorf("modelevent: migration status: %w", err)
		}
	}
	out := make([]MigrationState, 0, len(migs))
	known := map[int]bool{}
	for _, m := range migs {
		known[m.version] = true
		st := MigrationState{Version: m.version, Name: m.name}
		if a, ok := applied[m.version]; ok {
			st.Applied = true
			st.AppliedAt = time.UnixMicro(a.appliedAt).UTC()
		}
		out = append(out, st)
	}
	var extra []MigrationState
	for v, a := range applied {
		if !known[v] {
			extra = append(extra, MigrationState{Version: v, Applied: true, AppliedAt: time.UnixMicro(a.appliedAt).UTC()})
		}
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i].Version < extra[j].Version })
	return append(out, extra...), nil
}

// tableExists reports whether the named table exists in the store's schema.
func (s *SQLStore) tableExists(ctx context.Context, table string) (bool, error) {
	var q string
	switch s.dialect.name {
	case DialectPostgres:
		q = `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1`
	case DialectMySQL:
		q = `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?`
	default:
		q = `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	}
	var n int
	if err := s.db.QueryRowContext(ctx, q, table).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}
