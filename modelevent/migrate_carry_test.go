package modelevent

import (
	"context"
	"testing"
	"time"
)

// TestMigrationCarriesRowsOver writes rows with the schema of migration 0003, then
// migrates to the lean schema: every row is kept, a clean delivery keeps its one
// attempt in the row (its attempt row goes), a retried one keeps its history.
func TestMigrationCarriesRowsOver(t *testing.T) {
	for _, be := range testBackends {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, be.name, be.setup(t), false)
			migs, err := loadMigrations(s.dialect.name)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.migrate(ctx, migs[:3]); err != nil {
				t.Fatal(err)
			}
			start := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond).UnixMicro()
			old := []struct {
				id, uuid, handler, status, lastErr string
				attempts                           int
			}{
				{"01J00000000000000000000001", "m1", "billing", "succeeded", "", 1},
				{"01J00000000000000000000002", "m2", "billing", "succeeded", "boom", 2},
			}
			for _, o := range old {
				if _, err := s.db.ExecContext(ctx, s.dialect.rebind(`INSERT INTO eventbus_events (id, message_uuid, direction, handler,
topic, model, backend, payload, metadata, status, attempts, last_error, correlation_id, created_at, updated_at, object_id, change_type)
VALUES (?, ?, 'consumed', ?, 'orders', 'shop.Order', 'memory', ?, '{"correlation_id":"c"}', ?, ?, ?, 'c', ?, ?, '', '')`),
					o.id, o.uuid, o.handler, []byte(`{"n":1}`), o.status, o.attempts, o.lastErr, start, start); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < o.attempts; i++ {
					errText := ""
					if i < o.attempts-1 {
						errText = o.lastErr
					}
					if _, err := s.db.ExecContext(ctx, s.dialect.rebind(`INSERT INTO eventbus_attempts (message_uuid, direction, handler,
started_at, duration_us, error) VALUES (?, 'consumed', ?, ?, ?, ?)`), o.uuid, o.handler, start+int64(i)*1000, 1500+i, errText); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("migrate to the lean schema: %v", err)
			}
			clean := mustGet(t, s, old[0].id)
			if clean.Status != StatusSucceeded || clean.Metadata["correlation_id"] != "c" || clean.Model != "shop.Order" ||
				len(clean.History) != 1 || clean.History[0].Duration != 1500*time.Microsecond {
				t.Errorf("clean row after migration: %+v", clean)
			}
			var n int
			if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM eventbus_attempts`).Scan(&n); err != nil || n != 2 {
				t.Errorf("attempt rows after migration: %d (%v), want the 2 of the retried delivery", n, err)
			}
			retried := mustGet(t, s, old[1].id)
			if retried.Attempts != 2 || len(retried.History) != 2 || retried.History[0].Error != "boom" || retried.History[1].Error != "" {
				t.Errorf("retried row after migration: %+v", retried)
			}
			// A redelivery of the clean one now adds to its history, the first attempt kept.
			c := consumed("m1", "billing", StatusSucceeded, 1, "")
			c.NewAttempts = []Attempt{{StartedAt: time.Now(), Duration: time.Millisecond}}
			mustWrite(t, s, c)
			if got := mustGet(t, s, old[0].id); got.Attempts != 2 || len(got.History) != 2 {
				t.Errorf("redelivered after migration: attempts %d, history %+v", got.Attempts, got.History)
			}
			if got := listAll(t, s, Filter{CorrelationID: "c"}); len(got) != 2 {
				t.Errorf("correlation filter over carried rows: %d rows, want 2", len(got))
			}
			// 0006: the carried rows have no duplicates and can count them; the
			// schedule is empty and takes entries.
			if got := mustGet(t, s, old[1].id); got.Duplicates != 0 {
				t.Errorf("duplicates of a carried row: %d", got.Duplicates)
			}
			if err := s.AddDuplicate(ctx, "m2", "billing"); err != nil {
				t.Fatal(err)
			}
			if got := mustGet(t, s, old[1].id); got.Duplicates != 1 {
				t.Errorf("duplicates after one: %d", got.Duplicates)
			}
			if list, err := s.ListScheduled(ctx, "", 10); err != nil || len(list) != 0 {
				t.Errorf("schedule after migration: %v, %v", list, err)
			}
			if err := s.Schedule(ctx, Scheduled{MessageUUID: "m2", Consumer: "billing", Kind: ScheduleRetry, NextAttemptAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			due, _, err := s.ClaimDue(ctx, "p1", []string{"billing"}, 0, 4, time.Minute)
			if err != nil || len(due) != 1 || due[0].MessageUUID != "m2" {
				t.Errorf("claim the due retry: %+v, %v", due, err)
			}
		})
	}
}

func TestTraceID(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQLStore) {
		const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
		a := consumed("t1", "h", StatusRetrying, 1, "boom")
		a.Event.TraceID = trace
		mustWrite(t, s, a, consumed("t2", "h", StatusSucceeded, 1, ""))
		// A later write without a trace id keeps the stored one.
		mustWrite(t, s, consumed("t1", "h", StatusSucceeded, 1, ""))
		got := listAll(t, s, Filter{TraceID: trace})
		if len(got) != 1 || got[0].MessageUUID != "t1" || got[0].TraceID != trace || got[0].Status != StatusSucceeded {
			t.Fatalf("rows of trace %s: %+v", trace, got)
		}
	})
}
