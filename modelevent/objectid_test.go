package modelevent

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// orderChange is a produced model-change event about order id.
func orderChange(uuid, model, id string, change ChangeType) Change {
	return Change{Event: ModelEvent{
		MessageUUID: uuid, Direction: Produced, Topic: "shop.orders", Backend: "memory", Model: model,
		ObjectID: id, Change: change, Payload: []byte(`{}`), Status: StatusPublished, Attempts: 1,
	}}
}

func ids(events []ModelEvent) []string {
	out := make([]string, 0, len(events))
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}

func TestModelChangeColumns(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQLStore) {
		ctx := context.Background()
		var changes []Change
		for i := range 6 {
			id := fmt.Sprint(40 + i%3) // orders 40, 41, 42, twice each
			change := Created
			if i >= 3 {
				change = Updated
			}
			changes = append(changes, orderChange(fmt.Sprintf("o-%d", i), "shop.Order", id, change))
		}
		changes = append(changes,
			orderChange("c-42", "shop.Customer", "42", Created), // same id, other model
			orderChange("d-42", "shop.Order", "42", Deleted),
			orderChange("plain", "", "", ""),
			orderChange("custom", "shop.Order", "42", "archived"), // any short change type is kept
		)
		mustWrite(t, s, changes...)

		// Get returns the columns.
		got := mustGet(t, s, changes[7].Event.ID)
		if got.ObjectID != "42" || got.Change != Deleted || got.Model != "shop.Order" {
			t.Fatalf("Get: object_id %q change %q model %q, want 42 deleted shop.Order", got.ObjectID, got.Change, got.Model)
		}
		if p := mustGet(t, s, changes[8].Event.ID); p.ObjectID != "" || p.Change != "" {
			t.Fatalf("event without object: object_id %q change %q", p.ObjectID, p.Change)
		}

		// "Every event about order 42", newest first.
		want := []string{changes[9].Event.ID, changes[7].Event.ID, changes[5].Event.ID, changes[2].Event.ID}
		if got := ids(listAll(t, s, Filter{Model: "shop.Order", ObjectID: "42"})); !reflect.DeepEqual(got, want) {
			t.Errorf("List(order 42) = %v, want %v", got, want)
		}
		if got := ids(listAll(t, s, Filter{ObjectID: "42"})); len(got) != 5 {
			t.Errorf("List(object 42 of any model) = %d rows, want 5", len(got))
		}
		if got := ids(listAll(t, s, Filter{Model: "shop.Order", Change: Updated})); len(got) != 3 {
			t.Errorf("List(updated orders) = %d rows, want 3", len(got))
		}
		if got := listAll(t, s, Filter{Change: Deleted}); len(got) != 1 || got[0].ObjectID != "42" {
			t.Errorf("List(deleted) = %+v, want order 42", got)
		}

		// Stats count with the same filter.
		st, err := s.Stats(ctx, Filter{Model: "shop.Order", ObjectID: "42"})
		if err != nil || st.Total != 4 || st.ByStatus[StatusPublished] != 4 {
			t.Errorf("Stats(order 42) = %+v, %v; want 4 published", st, err)
		}

		// A later write of the same row fills empty columns and never replaces set ones.
		later := orderChange("plain", "", "7", Updated)
		later.Event.Status, later.Event.Attempts = StatusPublished, 0
		mustWrite(t, s, later)
		relabel := orderChange("d-42", "shop.Order", "99", Created)
		mustWrite(t, s, relabel)
		if p := mustGet(t, s, changes[8].Event.ID); p.ObjectID != "7" || p.Change != Updated {
			t.Errorf("filled row: object_id %q change %q, want 7 updated", p.ObjectID, p.Change)
		}
		if d := mustGet(t, s, changes[7].Event.ID); d.ObjectID != "42" || d.Change != Deleted {
			t.Errorf("set row replaced: object_id %q change %q, want 42 deleted", d.ObjectID, d.Change)
		}

		// Too long values are cut the same way on every dialect, the full value kept in
		// metadata.
		long := orderChange("long", "m", strings.Repeat("x", 192), ChangeType(strings.Repeat("c", 17)))
		batch := []Change{long}
		mustWrite(t, s, batch...)
		if got := mustGet(t, s, batch[0].Event.ID); len(got.ObjectID) != 190+len("…") || len(got.Change) != 15+len("…") ||
			got.Metadata[MetadataTruncated] != "object_id,change_type" || got.Metadata["eventbus_full_object_id"] != strings.Repeat("x", 192) {
			t.Errorf("long object_id and change: %q %q %v", got.ObjectID, got.Change, got.Metadata)
		}
	})
}

// TestModelChangeBatch writes a batch large enough for PostgreSQL's array upsert and
// merges changes of one row within the batch.
func TestModelChangeBatch(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQLStore) {
		var changes []Change
		for i := range 3 * pgArrayMinRows {
			changes = append(changes, orderChange(fmt.Sprintf("b-%03d", i), "shop.Order", fmt.Sprint(i%4), Updated))
		}
		// Two changes of one row in the batch: the first non-empty values are kept.
		first := orderChange("merged", "shop.Order", "", "")
		first.Event.Status = StatusPending
		changes = append(changes, first, orderChange("merged", "shop.Order", "3", Created))
		mustWrite(t, s, changes...)
		got := listAll(t, s, Filter{Model: "shop.Order", ObjectID: "3"})
		if len(got) != 3*pgArrayMinRows/4+1 {
			t.Fatalf("order 3: %d rows, want %d", len(got), 3*pgArrayMinRows/4+1)
		}
		for _, e := range got {
			if e.ObjectID != "3" || (e.Change != Updated && e.MessageUUID != "merged") {
				t.Errorf("row %s: object_id %q change %q", e.MessageUUID, e.ObjectID, e.Change)
			}
			if e.MessageUUID == "merged" && (e.Change != Created || e.Status != StatusPublished) {
				t.Errorf("merged row: change %q status %q, want created published", e.Change, e.Status)
			}
		}
	})
}

// TestMigrateModelChangeRerun re-runs migration 0003 on a database that already has
// some or all of its columns and index, as after a MySQL migration interrupted half-way
// (MySQL DDL is not transactional), and on a database holding rows written before it.
func TestMigrateModelChangeRerun(t *testing.T) {
	for _, b := range testBackends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, b.name, b.setup(t), false)
			migs, err := loadMigrations(b.name)
			if err != nil {
				t.Fatal(err)
			}
			var before []migration
			for _, m := range migs {
				if m.version < 3 {
					before = append(before, m)
				}
			}
			if err := s.migrate(ctx, before); err != nil {
				t.Fatalf("migrate to 0002: %v", err)
			}
			if _, err := s.DB().ExecContext(ctx, s.dialect.rebind(`INSERT INTO eventbus_events
				(id, message_uuid, direction, handler, topic, model, backend, payload, metadata, status, attempts, last_error, correlation_id, created_at, updated_at)
				VALUES ('01HZZZZZZZZZZZZZZZZZZZZZZZ', 'old', 'produced', '', 't', 'shop.Order', 'memory', ?, '{}', 'published', 1, '', '', 1, 1)`), []byte("{}")); err != nil {
				t.Fatalf("insert an old row: %v", err)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			old := mustGet(t, s, "01HZZZZZZZZZZZZZZZZZZZZZZZ")
			if old.ObjectID != "" || old.Change != "" {
				t.Fatalf("old row: object_id %q change %q, want empty", old.ObjectID, old.Change)
			}
			if b.name != DialectMySQL {
				return
			}
			// Forget 0003 and drop part of it: the rerun completes it without errors.
			for _, stmt := range []string{
				`DELETE FROM eventbus_schema_migrations WHERE version = 3`,
				`ALTER TABLE eventbus_events DROP INDEX eventbus_events_object`,
				`ALTER TABLE eventbus_events DROP COLUMN change_type`,
			} {
				if _, err := s.DB().ExecContext(ctx, stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate after a half-applied 0003: %v", err)
			}
			if _, err := s.DB().ExecContext(ctx, `DELETE FROM eventbus_schema_migrations WHERE version = 3`); err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate over a fully applied 0003: %v", err)
			}
			var idx []string
			rows, err := s.DB().QueryContext(ctx, `SELECT column_name FROM information_schema.statistics
				WHERE table_schema = DATABASE() AND table_name = 'eventbus_events' AND index_name = 'eventbus_events_object'
				ORDER BY seq_in_index`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var c string
				if err := rows.Scan(&c); err != nil {
					t.Fatal(err)
				}
				idx = append(idx, strings.ToLower(c))
			}
			if want := []string{"model", "object_id", "id"}; !reflect.DeepEqual(idx, want) {
				t.Fatalf("index eventbus_events_object columns = %v, want %v", idx, want)
			}
			mustWrite(t, s, orderChange("after", "shop.Order", "1", Created))
			if got := listAll(t, s, Filter{Model: "shop.Order", ObjectID: "1"}); len(got) != 1 || got[0].Change != Created {
				t.Fatalf("after rerun: %+v", got)
			}
		})
	}
}
