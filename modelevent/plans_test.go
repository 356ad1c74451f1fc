package modelevent

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"
)

// planCases are the List queries of the console and the CLI, with the index each one
// must use (docs/performance.md shows the plans).
var planCases = []struct {
	name  string
	f     Filter
	index string
}{
	{"newest page", Filter{}, "PRIMARY"},
	{"since", Filter{Since: time.Now().Add(-time.Hour)}, "PRIMARY"},
	{"failed", Filter{Statuses: []Status{StatusFailed, StatusPoisoned}}, "eventbus_events_status"},
	{"topic", Filter{Topic: "orders"}, "eventbus_events_topic"},
	{"handler", Filter{Handler: "billing"}, "eventbus_events_handler"},
	{"model", Filter{Model: "shop.Order"}, "eventbus_events_model"},
	{"object", Filter{Model: "shop.Order", ObjectID: "42"}, "eventbus_events_object"},
	{"message", Filter{MessageUUID: "0190-x"}, "eventbus_events_natural_key"},
	{"correlation", Filter{CorrelationID: "0190-x"}, "eventbus_events_correlation_id"},
	{"trace", Filter{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}, "eventbus_events_trace_id"},
}

// TestQueryPlans checks that every console filter is served by its index on SQLite
// and PostgreSQL (there with sequential scans off, as a large table would choose), and
// logs the plans: go test -run TestQueryPlans -v ./modelevent
func TestQueryPlans(t *testing.T) {
	for _, be := range testBackends[:2] {
		t.Run(be.name, func(t *testing.T) {
			s := openStore(t, be.name, be.setup(t), true)
			ctx := context.Background()
			conn, err := s.db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if be.name == DialectPostgres {
				if _, err := conn.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range planCases {
				where, args, err := s.where(c.f)
				if err != nil {
					t.Fatal(err)
				}
				q := s.dialect.rebind(selectEvents + where + " ORDER BY id DESC LIMIT 51")
				plan := explain(t, conn, be.name, q, args)
				want := c.index
				if want == "PRIMARY" {
					// SQLite's table is its primary key (WITHOUT ROWID): a scan of it
					// in id order needs no sort.
					want = map[string]string{DialectSQLite: "eventbus_events", DialectPostgres: "eventbus_events_pkey"}[be.name]
					if strings.Contains(plan, "TEMP B-TREE") {
						t.Errorf("%s: plan sorts:\n%s", c.name, plan)
					}
				}
				if !strings.Contains(plan, want) {
					t.Errorf("%s: plan does not use %s:\n%s", c.name, want, plan)
				}
				t.Logf("%s (%s):\n%s", c.name, strings.TrimPrefix(where, " WHERE "), plan)
			}
			// The scheduler's look for due work (ClaimDue), every poll interval of
			// every process, reads the schedule's due index.
			// A schedule of 2,000 entries not due yet, counted by ANALYZE, as a busy one.
			for i := 0; i < 2000; i++ {
				if err := s.Schedule(ctx, Scheduled{MessageUUID: fmt.Sprint("plan-", i), Consumer: "billing", Kind: ScheduleRetry,
					NextAttemptAt: time.Now().Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := conn.ExecContext(ctx, `ANALYZE eventbus_schedule`); err != nil {
				t.Fatal(err)
			}
			due := s.dialect.rebind(`SELECT ` + scheduleColumns + ` FROM eventbus_schedule WHERE next_attempt_at <= ? AND consumer IN (?, ?) ORDER BY next_attempt_at LIMIT 64`)
			plan := explain(t, conn, be.name, due, []any{time.Now().UnixMicro(), "", "billing"})
			if !strings.Contains(plan, "eventbus_schedule_due") {
				t.Errorf("due claim: plan does not use eventbus_schedule_due:\n%s", plan)
			}
			t.Logf("due claim (next_attempt_at <= now AND consumer IN (...)):\n%s", plan)
		})
	}
}

func explain(t *testing.T, conn *sql.Conn, dialect, q string, args []any) string {
	t.Helper()
	prefix := "EXPLAIN QUERY PLAN "
	if dialect == DialectPostgres {
		prefix = "EXPLAIN (COSTS OFF) "
	}
	rows, err := conn.QueryContext(context.Background(), prefix+q, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		// SQLite: id, parent, notused, detail; PostgreSQL: one text column.
		line := vals[len(vals)-1]
		switch v := line.(type) {
		case []byte:
			lines = append(lines, "  "+string(v))
		case string:
			lines = append(lines, "  "+v)
		default:
			lines = append(lines, "  "+fmt.Sprint(v))
		}
	}
	return strings.Join(lines, "\n")
}
