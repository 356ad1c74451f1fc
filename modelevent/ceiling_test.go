package modelevent

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// benchEventPayload is the 100-byte JSON payload of the bus benchmarks.
var benchEventPayload = []byte(`{"id":12345,"customer":"ada","total":99.95,"items":[{"sku":"A-1","qty":2},{"sku":"B-22","qty":1}]}`)

// eventChanges returns the two changes one bus event writes: the produced row and the
// consumed row of one handler, each with one clean attempt, as the recorder makes them.
func eventChanges(now time.Time) [2]Change {
	id := uuid.Must(uuid.NewV7()).String()
	meta := map[string]string{MetadataCorrelationID: id}
	att := []Attempt{{StartedAt: now, Duration: 40 * time.Microsecond}}
	return [2]Change{
		{Event: ModelEvent{MessageUUID: id, Direction: Produced, Topic: "bench", Backend: "memory",
			Payload: benchEventPayload, Metadata: meta, Status: StatusPublished, Attempts: 1, CorrelationID: id,
			CreatedAt: now, UpdatedAt: now}, NewAttempts: att},
		{Event: ModelEvent{MessageUUID: id, Direction: Consumed, Handler: "billing", Topic: "bench", Backend: "memory",
			Payload: benchEventPayload, Metadata: meta, Status: StatusSucceeded, Attempts: 1, CorrelationID: id,
			CreatedAt: now, UpdatedAt: now}, NewAttempts: att},
	}
}

// BenchmarkStoreCeiling measures the store's own ceiling, in rows/s, on the rows of bus
// events (a produced and a consumed row each, batches of 256 rows as the recorder's
// group commit makes them), beside a plain multi-row INSERT of the same values into a
// table with only a primary key, in the same run: what the store costs above the
// database's own insert. It also reports the bytes on disk per event (SQLite: the file;
// PostgreSQL: the events and attempts tables with their indexes).
//
//	go test -run '^$' -bench StoreCeiling -benchtime 200000x ./modelevent
func BenchmarkStoreCeiling(b *testing.B) {
	for _, be := range testBackends[:2] {
		b.Run(be.name+"/store", func(b *testing.B) {
			dsn := be.setup(b)
			s := openStore(b, be.name, dsn, true)
			benchRows(b, 256, func(ctx context.Context, batch []Change) error { return s.Write(ctx, batch) })
			reportBytes(b, s, dsn, "eventbus_events", "eventbus_attempts")
		})
		// Small commits, as durable recording makes them when few streams wait: what a
		// commit costs beside its rows.
		for _, size := range []int{2, 16} {
			b.Run(fmt.Sprintf("%s/store-batch-%d", be.name, size), func(b *testing.B) {
				s := openStore(b, be.name, be.setup(b), true)
				benchRows(b, size, func(ctx context.Context, batch []Change) error { return s.Write(ctx, batch) })
			})
		}
		b.Run(be.name+"/plain-insert", func(b *testing.B) {
			dsn := be.setup(b)
			s := openStore(b, be.name, dsn, false)
			if _, err := s.DB().Exec(`CREATE TABLE plain_events (` + plainColumnsDDL + `)`); err != nil {
				b.Fatal(err)
			}
			write := plainInsert(b, s)
			benchRows(b, 256, write)
			reportBytes(b, s, dsn, "plain_events")
		})
	}
}

const plainColumnsDDL = `id VARCHAR(26) NOT NULL PRIMARY KEY, message_uuid VARCHAR(64) NOT NULL, direction VARCHAR(16) NOT NULL,
handler VARCHAR(191) NOT NULL, topic VARCHAR(255) NOT NULL, model VARCHAR(255) NOT NULL, backend VARCHAR(32) NOT NULL,
payload BYTEA NOT NULL, metadata TEXT NOT NULL, status VARCHAR(16) NOT NULL, attempts INTEGER NOT NULL, last_error TEXT NOT NULL,
correlation_id VARCHAR(255) NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, object_id VARCHAR(191) NOT NULL,
change_type VARCHAR(16) NOT NULL, started_at BIGINT NOT NULL, duration_us BIGINT NOT NULL, meta_columns INTEGER NOT NULL,
trace_id VARCHAR(32) NOT NULL`

// plainInsert returns a writer that inserts the rows of a batch, with the values the
// store would write, into plain_events in one multi-row INSERT per 256 rows and one
// transaction per batch: the database's own cost for these rows.
func plainInsert(b *testing.B, s *SQLStore) func(context.Context, []Change) error {
	d := s.dialect
	var stmt *sql.Stmt
	q := strings.Replace(d.insertSQL(stmtInsertNew, 256), "eventbus_events", "plain_events", 1)
	q = q[:strings.Index(q, onConflictNothing)]
	if d.name == DialectSQLite {
		var err error
		if stmt, err = s.DB().Prepare(q); err != nil {
			b.Fatal(err)
		}
	}
	args := make([]any, 0, 256*numEventColumns)
	return func(ctx context.Context, batch []Change) error {
		rows, _ := coalesce(batch, time.Now())
		tx, err := s.DB().BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		if d.name == DialectPostgres {
			if _, err := tx.ExecContext(ctx, strings.Replace(pgEventsFromArrays, "eventbus_events", "plain_events", 1), pgEventArrays(rows)...); err != nil {
				return err
			}
			return tx.Commit()
		}
		args = rowArgs(args[:0], rows, d.nullAsEmpty)
		if _, err := tx.Stmt(stmt).ExecContext(ctx, args...); err != nil {
			return err
		}
		return tx.Commit()
	}
}

// benchRows writes b.N rows (b.N/2 events) in batches of size rows with write, and
// reports rows/s, µs per commit and the process's CPU time per row.
func benchRows(b *testing.B, size int, write func(context.Context, []Change) error) {
	ctx := context.Background()
	batch := make([]Change, 0, size)
	commits := 0
	b.ResetTimer()
	cpu := cpuSeconds()
	for written := 0; written < b.N; commits++ {
		batch = batch[:0]
		now := time.Now()
		for len(batch) < size {
			ev := eventChanges(now)
			batch = append(batch, ev[0], ev[1])
		}
		if err := write(ctx, batch); err != nil {
			b.Fatal(err)
		}
		written += len(batch)
	}
	cpu = cpuSeconds() - cpu
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(commits), "µs/commit")
	// The process's CPU per row (the database server's not included): steadier than
	// rows/s on a loaded machine.
	b.ReportMetric(cpu*1e6/float64(b.N), "cpu-µs/row")
}

// reportBytes reports the bytes on disk per event (two rows) after the benchmark.
func reportBytes(b *testing.B, s *SQLStore, dsn string, tables ...string) {
	b.StopTimer()
	events := float64((b.N+255)/256*256) / 2
	switch s.Dialect() {
	case DialectSQLite:
		if _, err := s.DB().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			b.Fatal(err)
		}
		st, err := os.Stat(dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(st.Size())/events, "disk-B/event")
	case DialectPostgres:
		var total int64
		for _, t := range tables {
			var n int64
			if err := s.DB().QueryRow(fmt.Sprintf(`SELECT pg_total_relation_size('%s')`, t)).Scan(&n); err != nil {
				b.Fatal(err)
			}
			total += n
		}
		b.ReportMetric(float64(total)/events, "disk-B/event")
	}
}
