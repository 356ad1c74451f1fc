package modelevent

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/go-eventbus/eventbus/internal/testenv"
)

// testBackend creates an isolated, empty database for one test and returns the driver
// and DSN to open it with.
type testBackend struct {
	name  string
	setup func(t testing.TB) string
}

var testBackends = []testBackend{
	{DialectSQLite, setupSQLite},
	{DialectPostgres, testenv.FreshPostgres},
	{DialectMySQL, testenv.FreshMySQL},
}

func setupSQLite(t testing.TB) string {
	return filepath.Join(t.TempDir(), "events.db")
}

func openStore(t testing.TB, driver, dsn string, migrate bool) *SQLStore {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, driver, dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if migrate {
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	return s
}

// forEachStore runs fn on a fresh, migrated store of every dialect.
func forEachStore(t *testing.T, fn func(t *testing.T, s *SQLStore)) {
	for _, b := range testBackends {
		t.Run(b.name, func(t *testing.T) {
			fn(t, openStore(t, b.name, b.setup(t), true))
		})
	}
}

func consumed(uuid, handler string, status Status, attempts int, lastErr string) Change {
	return Change{Event: ModelEvent{
		MessageUUID: uuid, Direction: Consumed, Handler: handler, Topic: "orders", Backend: "memory",
		Payload: []byte(`{"n":1}`), Status: status, Attempts: attempts, LastError: lastErr,
	}}
}

func mustWrite(t *testing.T, s *SQLStore, changes ...Change) {
	t.Helper()
	if err := s.Write(context.Background(), changes); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func mustGet(t *testing.T, s *SQLStore, id string) ModelEvent {
	t.Helper()
	e, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return e
}

func listAll(t *testing.T, s *SQLStore, f Filter) []ModelEvent {
	t.Helper()
	var out []ModelEvent
	opts := ListOptions{Limit: 1000}
	for {
		p, err := s.List(context.Background(), f, opts)
		if err != nil {
			t.Fatalf("List(%+v): %v", f, err)
		}
		out = append(out, p.Events...)
		if p.NextCursor == "" {
			return out
		}
		opts.Cursor = p.NextCursor
	}
}

func TestMigrate(t *testing.T) {
	for _, b := range testBackends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.setup(t)
			s1 := openStore(t, b.name, dsn, false)
			st, err := s1.MigrationStatus(ctx)
			if err != nil {
				t.Fatalf("MigrationStatus before: %v", err)
			}
			if len(st) == 0 || st[0].Version != 1 || st[0].Name != "init" || st[0].Applied {
				t.Fatalf("status before Migrate = %+v, want 0001 init not applied", st)
			}
			// Two stores (as two processes would) migrate at once.
			s2 := openStore(t, b.name, dsn, false)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, s := range []*SQLStore{s1, s2} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = s.Migrate(ctx)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("concurrent Migrate %d: %v", i, err)
				}
			}
			if err := s1.Migrate(ctx); err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
			st, err = s2.MigrationStatus(ctx)
			if err != nil {
				t.Fatalf("MigrationStatus: %v", err)
			}
			migs, _ := loadMigrations(b.name)
			if len(st) != len(migs) {
				t.Fatalf("status has %d migrations, want %d: %+v", len(st), len(migs), st)
			}
			for _, m := range st {
				if !m.Applied || m.AppliedAt.IsZero() || time.Since(m.AppliedAt) > time.Hour {
					t.Errorf("migration %d not applied properly: %+v", m.Version, m)
				}
			}
			var n int
			if err := s1.DB().QueryRow("SELECT COUNT(*) FROM eventbus_schema_migrations").Scan(&n); err != nil || n != len(migs) {
				t.Fatalf("eventbus_schema_migrations rows = %d (%v), want %d", n, err, len(migs))
			}
			mustWrite(t, s1, consumed("m1", "h", StatusSucceeded, 1, ""))
		})
	}
}

func TestWriteUpsert(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQLStore) {
		t0 := time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC)
		first := consumed("msg-1", "billing", StatusRetrying, 1, "boom")
		first.Event.UpdatedAt = t0
		first.Event.CreatedAt = t0
		first.NewAttempts = []Attempt{{StartedAt: t0, Duration: 1500 * time.Microsecond, Error: "boom"}}
		changes := []Change{first}
		mustWrite(t, s, changes...)
		id := changes[0].Event.ID
		if _, ok := normalizeID(id); !ok {
			t.Fatalf("Write did not fill a ULID into the change: %q", id)
		}

		// Redelivery: succeeds, no error; the model and correlation id arrive late.
		t1 := t0.Add(time.Second)
		second := consumed("msg-1", "billing", StatusSucceeded, 1, "")
		second.Event.UpdatedAt = t1
		second.Event.Model = "shop.Order"
		second.Event.CorrelationID = "corr-9"
		second.Event.Payload = []byte("other payload, ignored")
		second.NewAttempts = []Attempt{{StartedAt: t1, Duration: 2 * time.Millisecond}}
		batch := []Change{second}
		mustWrite(t, s, batch...)
		if batch[0].Event.ID != id {
			t.Fatalf("a redelivery's change got id %s, want the stored row's %s", batch[0].Event.ID, id)
		}

		got := mustGet(t, s, id)
		want := ModelEvent{
			ID: id, MessageUUID: "msg-1", Direction: Consumed, Handler: "billing", Topic: "orders",
			Model: "shop.Order", Backend: "memory", Payload: []byte(`{"n":1}`), Status: StatusSucceeded,
			Attempts: 2, LastError: "boom", CorrelationID: "corr-9", CreatedAt: t0, UpdatedAt: t1,
			History: []Attempt{
				{StartedAt: t0, Duration: 1500 * time.Microsecond, Error: "boom"},
				{StartedAt: t1, Duration: 2 * time.Millisecond},
			},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after redelivery\n got %+v\nwant %+v", got, want)
		}

		// A third write may not replace model, correlation id, payload or metadata.
		third := consumed("msg-1", "billing", StatusFailed, 1, "late")
		third.Event.Model = "other.Model"
		third.Event.Metadata = map[string]string{"k": "v"}
		mustWrite(t, s, third)
		got = mustGet(t, s, id)
		if got.Model != "shop.Order" || got.CorrelationID != "corr-9" || got.Attempts != 3 ||
			got.LastError != "late" || got.Status != StatusFailed || got.Metadata["k"] != "v" {
			t.Fatalf("after third write: %+v", got)
		}
		if len(listAll(t, s, Filter{})) != 1 {
			t.Fatalf("redeliveries added rows")
		}
	})
}

func TestWriteCoalescesBatch(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQLStore) {
		t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
		a := consumed("msg-2", "h", StatusRetrying, 1, "e1")
		a.Event.UpdatedAt = t0
		a.NewAttempts = []Attempt{{StartedAt: t0, Error: "e1"}}
		b := consumed("msg-2", "h", StatusRetrying, 1, "e2")
		b.Event.UpdatedAt = t0.Add(time.Second)
		b.NewAttempts = []Attempt{{StartedAt: t0.Add(time.Second), Error: "e2"}}
		other := Change{Event: ModelEvent{MessageUUID: "msg-2", Direction: Produced, Topic: "orders", Status: StatusPublished, Attempts: 1}}
		c := consumed("msg-2", "h", StatusSucceeded, 1, "")
		c.Event.UpdatedAt = t0.Add(2 * time.Second)
		c.NewAttempts = []Attempt{{StartedAt: t0.Add(2 * time.Second)}}
		batch := []Change{a, b, other, c}
		mustWrite(t, s, batch...)
		if batch[0].Event.ID == "" || batch[0].Event.ID != batch[1].Event.ID || batch[1].Event.ID != batch[3].Event.ID {
			t.Fatalf("changes of one row got different ids: %q %q %q", batch[0].Event.ID, batch[1].Event.ID, batch[3].Event.ID)
		}
		if batch[2].Event.ID == batch[0].Event.ID {
			t.Fatalf("produced and consumed rows share an id")
		}
		got := mustGet(t, s, batch[0].Event.ID)
		if got.Attempts != 3 || got.Status != StatusSucceeded || got.LastError != "e2" ||
			!got.UpdatedAt.Equal(t0.Add(2*time.Second)) || len(got.History) != 3 ||
			got.History[0].Error != "e1" || got.History[1].Error != "e2" || got.History[2].Error != "" {
			t.Fatalf("coalesced row: %+v", got)
		}
		prod := mustGet(t, s, batch[2].Event.ID)
		if prod.Direction != Produced || prod.Handler != "" || prod.Status != StatusPublished || len(prod.History) != 0 {
			t.Fatalf("produced row: %+v", prod)
		}
		if n := len(listAll(t, s, Filter{MessageUUID: "msg-2"})); n != 2 {
			t.Fatalf("rows of msg-2 = %d, want 2", n)
		}
	})
}

func TestWriteRejectsOnlyBadChanges(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQLStore) {
		ctx := context.Background()
		bad := consumed("m", "h", "weird", 1, "")
		err := s.Write(ctx, []Change{consumed("ok", "h", StatusSucceeded, 1, ""), bad})
		var rej *RejectedError
		if !errors.As(err, &rej) || !errors.Is(err, ErrRejected) || len(rej.Changes) != 1 || rej.Changes[1] == nil ||
			!strings.Contains(err.Error(), `"weird"`) {
			t.Fatalf("invalid status: err = %v", err)
		}
		if got := listAll(t, s, Filter{MessageUUID: "ok"}); len(got) != 1 {
			t.Fatalf("the valid change beside an invalid one: %d rows", len(got))
		}
		for _, c := range []Change{
			{Event: ModelEvent{Direction: Consumed, Status: StatusPending}},
			{Event: ModelEvent{MessageUUID: "m", Direction: "sideways", Status: StatusPending}},
			{Event: ModelEvent{MessageUUID: "m", Direction: Consumed, Handler: "h", Status: StatusPending, ID: "not-a-ulid"}},
			{Event: ModelEvent{MessageUUID: "m", Direction: Consumed, Status: StatusPending}},
			{Event: ModelEvent{MessageUUID: "m", Direction: Produced, Handler: "h", Status: StatusPublished}},
		} {
			if err := s.Write(ctx, []Change{c}); !errors.Is(err, ErrRejected) {
				t.Errorf("Write(%+v): err = %v, want a rejection", c.Event, err)
			}
		}
		if err := s.Write(ctx, nil); err != nil {
			t.Fatalf("empty Write: %v", err)
		}

		// Two rows with the same caller-chosen id: the database refuses the second one
		// only. (MySQL's ON DUPLICATE KEY UPDATE cannot tell this from a redelivery.)
		if s.Dialect() != DialectMySQL {
			id := ulid.Make().String()
			x, y := consumed("x", "h", StatusSucceeded, 1, ""), consumed("y", "h", StatusSucceeded, 1, "")
			x.Event.ID, y.Event.ID = id, id
			err := s.Write(ctx, []Change{x, y})
			if !errors.As(err, &rej) || len(rej.Changes) != 1 || rej.Changes[1] == nil {
				t.Fatalf("duplicate id in one batch: err = %v", err)
			}
			if got := listAll(t, s, Filter{MessageUUID: "x"}); len(got) != 1 {
				t.Fatalf("the first of two rows with one id: %d rows", len(got))
			}
		}

		// A constraint of the database's own refuses one row among 40: the 39 others are
		// stored, the batch split around it.
		var ddl string
		switch s.Dialect() {
		case DialectSQLite:
			ddl = `CREATE TRIGGER eventbus_test_forbid BEFORE INSERT ON eventbus_events WHEN NEW.topic = 'forbidden'
BEGIN SELECT RAISE(ABORT, 'forbidden topic'); END`
		default:
			ddl = `ALTER TABLE eventbus_events ADD CONSTRAINT eventbus_test_forbid CHECK (topic <> 'forbidden')`
		}
		if _, err := s.DB().Exec(ddl); err != nil {
			t.Fatal(err)
		}
		var batch []Change
		for i := 0; i < 40; i++ {
			c := consumed(fmt.Sprintf("c%02d", i), "h", StatusSucceeded, 1, "")
			c.Event.Topic = "allowed"
			if i == 17 {
				c.Event.Topic = "forbidden"
			}
			c.NewAttempts = []Attempt{{StartedAt: time.Now(), Duration: time.Millisecond}}
			batch = append(batch, c)
		}
		err = s.Write(ctx, batch)
		if !errors.As(err, &rej) || len(rej.Changes) != 1 || rej.Changes[17] == nil || !strings.Contains(err.Error(), "c17") {
			t.Fatalf("constraint on one row: err = %v", err)
		}
		if got := listAll(t, s, Filter{Topic: "allowed"}); len(got) != 39 {
			t.Fatalf("rows beside the refused one: %d, want 39", len(got))
		}

		// A store that cannot run the statements at all stores nothing and rejects
		// nothing: the caller retries.
		if _, err := s.DB().Exec("ALTER TABLE eventbus_attempts RENAME TO eventbus_attempts_away"); err != nil {
			t.Fatal(err)
		}
		f := consumed("f", "h", StatusFailed, 1, "boom")
		f.NewAttempts = []Attempt{{StartedAt: time.Now(), Error: "boom"}}
		err = s.Write(ctx, []Change{f, consumed("g", "h", StatusSucceeded, 1, "")})
		if err == nil || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "insert 1 attempts") {
			t.Fatalf("attempts table missing: err = %v", err)
		}
		if _, err := s.DB().Exec("ALTER TABLE eventbus_attempts_away RENAME TO eventbus_attempts"); err != nil {
			t.Fatal(err)
		}
		if got := listAll(t, s, Filter{Handler: "h", Statuses: []Status{StatusFailed}}); len(got) != 0 {
			t.Fatalf("a failed write left %d rows", len(got))
		}
	})
}

func TestWriteRepairsValues(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQLStore) {
		longCorr := strings.Repeat("c", 300)
		c := consumed("r1", strings.Repeat("h", 192), StatusSucceeded, 1, "bad \xff\x00 error")
		c.Event.CorrelationID = longCorr
		c.Event.Metadata = map[string]string{MetadataCorrelationID: longCorr, "x-bin": "\xfe\xff"}
		c.Event.Topic = "t\x00\xc3"
		long := consumed(strings.Repeat("u", 80)+"1", "h", StatusSucceeded, 1, "")
		long2 := consumed(strings.Repeat("u", 80)+"2", "h", StatusSucceeded, 1, "")
		batch := []Change{c, long, long2}
		mustWrite(t, s, batch...)
		c, long, long2 = batch[0], batch[1], batch[2]
		got := mustGet(t, s, c.Event.ID)
		if len([]rune(got.CorrelationID)) != 255 || !strings.HasSuffix(got.CorrelationID, "…") ||
			got.Metadata[MetadataCorrelationID] != longCorr {
			t.Errorf("long correlation id: column %q, metadata %q", got.CorrelationID, got.Metadata[MetadataCorrelationID])
		}
		if len([]rune(got.Handler)) != 191 || got.Metadata["eventbus_full_handler"] != strings.Repeat("h", 192) ||
			got.Metadata[MetadataTruncated] != "handler,correlation_id" {
			t.Errorf("long handler: %q, metadata %v", got.Handler, got.Metadata)
		}
		if got.Topic != "t\uFFFD\uFFFD" || got.LastError != "bad \uFFFD\uFFFD error" || got.Metadata["x-bin"] != "\uFFFD\uFFFD" {
			t.Errorf("invalid text: topic %q, last error %q, metadata %q", got.Topic, got.LastError, got.Metadata["x-bin"])
		}
		a, b := mustGet(t, s, long.Event.ID), mustGet(t, s, long2.Event.ID)
		if len([]rune(a.MessageUUID)) != 64 || a.MessageUUID == b.MessageUUID {
			t.Errorf("long message uuids: %q and %q", a.MessageUUID, b.MessageUUID)
		}
		// A redelivery of the long-UUID message updates its row.
		again := consumed(strings.Repeat("u", 80)+"1", "h", StatusSucceeded, 1, "")
		mustWrite(t, s, again)
		if got := mustGet(t, s, long.Event.ID); got.Attempts != 2 {
			t.Errorf("redelivery of a long-UUID message: attempts %d, want 2", got.Attempts)
		}
	})
}

func TestGetErrors(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQLStore) {
		ctx := context.Background()
		c := []Change{consumed("m", "h", StatusSucceeded, 1, "")}
		mustWrite(t, s, c...)
		if e := mustGet(t, s, strings.ToLower(c[0].Event.ID)); e.ID != c[0].Event.ID {
			t.Fatalf("lower-case id: got %q", e.ID)
		}
		unknown := ulid.Make().String()
		_, err := s.Get(ctx, unknown)
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), unknown) {
			t.Fatalf("unknown id: err = %v", err)
		}
		for _, id := range []string{"", "abc", "'; DROP TABLE eventbus_events; --",
			"01ARZ3NDEKTSV4RRFFQ69G5FAU", "81ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FA%", strings.Repeat("0", 27)} {
			_, err := s.Get(ctx, id)
			if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "malformed id") {
				t.Errorf("Get(%q): err = %v, want a malformed-id ErrNotFound", id, err)
			}
		}
	})
}

// seedEvents writes a varied set of rows and returns them as stored.
func seedEvents(t *testing.T, s *SQLStore) []ModelEvent {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	payloads := [][]byte{
		[]byte(`{"discount":"50%"}`), []byte(`{"sku":"a_b"}`), []byte(`it's "quoted"`),
		[]byte("'; DROP TABLE eventbus_events; --"), {0xff, 0xfe, 0x00, 'z', 0x80}, []byte(`back\slash!`),
		[]byte("plain"), nil,
	}
	errs := []string{"", "it's broken_now", "100% failed", "timeout", ""}
	statuses := []Status{StatusSucceeded, StatusFailed, StatusRetrying, StatusPoisoned, StatusPending}
	var changes []Change
	for i := 0; i < 40; i++ {
		e := ModelEvent{
			MessageUUID:   fmt.Sprintf("uuid-%02d", i/2),
			Direction:     Consumed,
			Handler:       []string{"billing", "shipping", "audit"}[i%3],
			Topic:         []string{"orders", "users"}[i%2],
			Model:         []string{"shop.Order", "", "auth.User"}[i%3],
			Backend:       "memory",
			Payload:       payloads[i%len(payloads)],
			Status:        statuses[i%len(statuses)],
			Attempts:      1 + i%3,
			LastError:     errs[i%len(errs)],
			CorrelationID: fmt.Sprintf("corr-%d", i%4),
			CreatedAt:     base.Add(time.Duration(i) * time.Hour),
			Metadata:      map[string]string{"i": fmt.Sprint(i)},
		}
		if i%5 == 0 {
			e.Direction, e.Handler, e.Status = Produced, "", StatusPublished
		}
		changes = append(changes, Change{Event: e})
	}
	mustWrite(t, s, changes...)
	out := make([]ModelEvent, len(changes))
	for i, c := range changes {
		out[i] = mustGet(t, s, c.Event.ID)
		out[i].History = nil
	}
	return out
}

// matches is the reference implementation of Filter.
func matches(f Filter, e ModelEvent) bool {
	if f.Direction != "" && e.Direction != f.Direction ||
		f.Topic != "" && e.Topic != f.Topic ||
		f.Model != "" && e.Model != f.Model ||
		f.Handler != "" && e.Handler != f.Handler ||
		f.CorrelationID != "" && e.CorrelationID != f.CorrelationID ||
		f.MessageUUID != "" && e.MessageUUID != f.MessageUUID ||
		!f.Since.IsZero() && e.CreatedAt.Before(f.Since) ||
		!f.Until.IsZero() && !e.CreatedAt.Before(f.Until) {
		return false
	}
	if len(f.Statuses) > 0 {
		ok := false
		for _, st := range f.Statuses {
			ok = ok || st == e.Status
		}
		if !ok {
			return false
		}
	}
	if f.Text != "" {
		return strings.Contains(e.ID, f.Text) || strings.Contains(e.MessageUUID, f.Text) ||
			bytes.Contains(e.Payload, []byte(f.Text)) || strings.Contains(e.LastError, f.Text)
	}
	return true
}

func TestListFilters(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQLStore) {
		events := seedEvents(t, s)
		base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		filters := []Filter{
			{},
			{Direction: Produced},
			{Direction: Consumed},
			{Statuses: []Status{StatusFailed}},
			{Statuses: []Status{StatusFailed, StatusPoisoned, StatusPublished}},
			{Topic: "users"},
			{Model: "shop.Order"},
			{Handler: "shipping"},
			{CorrelationID: "corr-3"},
			{MessageUUID: "uuid-07"},
			{Since: base.Add(10 * time.Hour)},
			{Until: base.Add(10 * time.Hour)},
			{Since: base.Add(5 * time.Hour), Until: base.Add(6 * time.Hour)},
			{Topic: "orders", Direction: Consumed, Statuses: []Status{StatusSucceeded, StatusRetrying}},
			{Text: "uuid-1"},
			{Text: events[3].ID},
			{Text: "%"}, {Text: "_"}, {Text: "50%"}, {Text: "a_b"}, {Text: "a%b"}, {Text: "'"}, {Text: `"`},
			{Text: "it's"}, {Text: "'; DROP TABLE eventbus_events; --"}, {Text: `\`}, {Text: `back\slash!`},
			{Text: "!"}, {Text: "broken_now"}, {Text: "broken%"}, {Text: "\xff\xfe"}, {Text: "\x00z"}, {Text: "z\x80"},
			{Text: "nothing matches this"}, {Text: "PLAIN"}, {Text: "plain"},
			{Topic: "no-such-topic"},
		}
		for _, f := range filters {
			var want []string
			for _, e := range events {
				if matches(f, e) {
					want = append(want, e.ID)
				}
			}
			sort.Sort(sort.Reverse(sort.StringSlice(want)))
			var got []string
			for _, e := range listAll(t, s, f) {
				got = append(got, e.ID)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("List(%+v): got %d ids %v\nwant %d ids %v", f, len(got), got, len(want), want)
			}
		}
		// Rows come back whole.
		for _, e := range listAll(t, s, Filter{MessageUUID: "uuid-02"}) {
			for _, w := range events {
				if w.ID == e.ID && !reflect.DeepEqual(e, w) {
					t.Errorf("listed row differs from Get:\n got %+v\nwant %+v", e, w)
				}
			}
		}
		ctx := context.Background()
		if _, err := s.List(ctx, Filter{Direction: "up"}, ListOptions{}); err == nil {
			t.Errorf("unknown direction: no error")
		}
		if _, err := s.List(ctx, Filter{Statuses: []Status{"nope"}}, ListOptions{}); err == nil {
			t.Errorf("unknown status: no error")
		}
		for _, cur := range []string{"x", "'; --", ulid.Make().String() + "0"} {
			if _, err := s.List(ctx, Filter{}, ListOptions{Cursor: cur}); err == nil || !strings.Contains(err.Error(), "malformed cursor") {
				t.Errorf("cursor %q: err = %v", cur, err)
			}
		}
	})
}

func TestListPagination(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQLStore) {
		ctx := context.Background()
		const n = 1001 // more than one upsert chunk and the largest page
		changes := make([]Change, n)
		for i := range changes {
			changes[i] = consumed(fmt.Sprintf("page-%04d", i), "h", StatusSucceeded, 1, "")
			changes[i].NewAttempts = []Attempt{{StartedAt: time.Now()}}
		}
		mustWrite(t, s, changes...)
		want := make([]string, n)
		for i, c := range changes {
			want[n-1-i] = c.Event.ID // ULIDs of one process grow: newest is last
		}

		p, err := s.List(ctx, Filter{}, ListOptions{})
		if err != nil || len(p.Events) != defaultListLimit || p.NextCursor != p.Events[len(p.Events)-1].ID {
			t.Fatalf("default page: %d events, cursor %q, err %v", len(p.Events), p.NextCursor, err)
		}
		p, err = s.List(ctx, Filter{}, ListOptions{Limit: 5000})
		if err != nil || len(p.Events) != maxListLimit || p.NextCursor == "" {
			t.Fatalf("capped page: %d events, cursor %q, err %v", len(p.Events), p.NextCursor, err)
		}

		var got []string
		opts := ListOptions{Limit: 37}
		for pages := 0; ; pages++ {
			p, err := s.List(ctx, Filter{Direction: Consumed}, opts)
			if err != nil {
				t.Fatalf("page %d: %v", pages, err)
			}
			for _, e := range p.Events {
				got = append(got, e.ID)
			}
			if pages == 3 {
				// Rows written between pages are newer: they do not disturb the walk.
				mustWrite(t, s, consumed("late-arrival", "h", StatusPending, 0, ""))
			}
			if p.NextCursor == "" {
				break
			}
			opts.Cursor = p.NextCursor
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("pagination: got %d ids, want %d (duplicates or gaps)", len(got), len(want))
		}
		// A page that ends exactly at the last row has no cursor.
		p, err = s.List(ctx, Filter{MessageUUID: "page-0001"}, ListOptions{Limit: 1})
		if err != nil || len(p.Events) != 1 || p.NextCursor != "" {
			t.Fatalf("single-row page: %+v, %v", p, err)
		}
	})
}

func TestStats(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQLStore) {
		events := seedEvents(t, s)
		for _, f := range []Filter{{}, {Direction: Consumed}, {Statuses: []Status{StatusFailed, StatusSucceeded}}, {Topic: "none"}} {
			want := Stats{ByStatus: map[Status]int64{}, ByTopic: []TopicCount{}}
			idx := map[[2]string]int{}
			for _, e := range events {
				if !matches(f, e) {
					continue
				}
				want.Total++
				want.ByStatus[e.Status]++
				k := [2]string{e.Topic, string(e.Direction)}
				i, ok := idx[k]
				if !ok {
					i = len(want.ByTopic)
					idx[k] = i
					want.ByTopic = append(want.ByTopic, TopicCount{Topic: e.Topic, Direction: e.Direction, ByStatus: map[Status]int64{}})
				}
				want.ByTopic[i].Total++
				want.ByTopic[i].ByStatus[e.Status]++
			}
			sort.Slice(want.ByTopic, func(i, j int) bool {
				a, b := want.ByTopic[i], want.ByTopic[j]
				return a.Topic < b.Topic || a.Topic == b.Topic && a.Direction < b.Direction
			})
			got, err := s.Stats(context.Background(), f)
			if err != nil {
				t.Fatalf("Stats(%+v): %v", f, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Stats(%+v)\n got %+v\nwant %+v", f, got, want)
			}
		}
	})
}

func TestPayloads(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQLStore) {
		big := make([]byte, 2<<20)
		if _, err := rand.Read(big); err != nil {
			t.Fatal(err)
		}
		notUTF8 := []byte{0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0x00, 0xff}
		c := []Change{
			consumed("big", "h", StatusSucceeded, 1, ""),
			consumed("bin", "h", StatusFailed, 1, "bad \xff\x00 bytes"),
			consumed("meta", "h", StatusSucceeded, 1, ""),
		}
		c[0].Event.Payload = big
		c[1].Event.Payload = notUTF8
		c[1].NewAttempts = []Attempt{{StartedAt: time.Now(), Error: "\xfe\x00"}}
		c[2].Event.Metadata = map[string]string{"quote": `"'`, "unicode": "ünï ✓", "empty": ""}
		mustWrite(t, s, c...)
		if got := mustGet(t, s, c[0].Event.ID); !bytes.Equal(got.Payload, big) {
			t.Fatalf("2 MiB payload: got %d bytes, not byte-exact", len(got.Payload))
		}
		got := mustGet(t, s, c[1].Event.ID)
		if !bytes.Equal(got.Payload, notUTF8) {
			t.Fatalf("non-UTF-8 payload: got %x, want %x", got.Payload, notUTF8)
		}
		if got.LastError == "" || len(got.History) != 1 || got.History[0].Error == "" {
			t.Fatalf("invalid UTF-8 error text was not kept: %+v", got)
		}
		if got := mustGet(t, s, c[2].Event.ID); !reflect.DeepEqual(got.Metadata, c[2].Event.Metadata) {
			t.Fatalf("metadata: got %v, want %v", got.Metadata, c[2].Event.Metadata)
		}
		if ids := listAll(t, s, Filter{Text: string(big[1<<20 : 1<<20+16])}); len(ids) != 1 || ids[0].ID != c[0].Event.ID {
			t.Fatalf("text search inside a 2 MiB payload found %d rows", len(ids))
		}
	})
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	_, err := Open(ctx, "oracle", "x")
	if err == nil || err.Error() != `modelevent: unknown store driver "oracle" (accepted: sqlite, postgres, mysql)` {
		t.Fatalf("unknown driver: %v", err)
	}
	if _, err := NewSQLStore(nil, "sqlite"); err == nil {
		t.Fatalf("nil db: no error")
	}
	for _, tc := range []struct{ driver, dsn string }{
		{"postgres", "postgres://alice:s3cret@127.0.0.1:1/db?sslmode=disable"},
		{"mysql", "alice:s3cret@tcp(127.0.0.1:1)/db"},
	} {
		start := time.Now()
		_, err := Open(ctx, tc.driver, tc.dsn)
		if err == nil {
			t.Fatalf("%s on a closed port: no error", tc.driver)
		}
		msg := err.Error()
		if strings.Contains(msg, "s3cret") || !strings.Contains(msg, tc.driver) || !strings.Contains(msg, "127.0.0.1:1") {
			t.Errorf("%s: error %q must name the driver and the DSN without its password", tc.driver, msg)
		}
		if d := time.Since(start); d > 11*time.Second {
			t.Errorf("%s: Open took %v", tc.driver, d)
		}
	}
	if _, err := Open(ctx, "sqlite", filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")); err == nil {
		t.Fatalf("sqlite in a missing directory: no error")
	}
}

func TestSQLiteDSNs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, dsn := range []string{
		filepath.Join(dir, "plain.db"),
		"file:" + filepath.Join(dir, "uri.db"),
		"file:" + filepath.Join(dir, "uri2.db") + "?_pragma=busy_timeout(100)",
		":memory:",
		"file::memory:",
	} {
		s, err := Open(ctx, "sqlite", dsn)
		if err != nil {
			t.Fatalf("Open(%q): %v", dsn, err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate(%q): %v", dsn, err)
		}
		c := []Change{consumed("m", "h", StatusSucceeded, 1, "")}
		if err := s.Write(ctx, c); err != nil {
			t.Fatalf("Write(%q): %v", dsn, err)
		}
		if _, err := s.Get(ctx, c[0].Event.ID); err != nil {
			t.Fatalf("Get(%q): %v", dsn, err)
		}
		var mode string
		var sync, busy int
		_ = s.DB().QueryRow("PRAGMA journal_mode").Scan(&mode)
		_ = s.DB().QueryRow("PRAGMA synchronous").Scan(&sync)
		_ = s.DB().QueryRow("PRAGMA busy_timeout").Scan(&busy)
		if !strings.Contains(dsn, "memory") && (mode != "wal" || sync != 1) {
			t.Errorf("%q: journal_mode %q synchronous %d, want wal 1", dsn, mode, sync)
		}
		if !strings.Contains(dsn, "busy_timeout") && busy != 5000 {
			t.Errorf("%q: busy_timeout %d", dsn, busy)
		}
		if s.Dialect() != "sqlite" {
			t.Errorf("Dialect() = %q", s.Dialect())
		}
		if err := s.Close(); err != nil || s.Close() != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for _, tc := range []struct{ driver, in, want string }{
		{"postgres", "postgres://u:pw@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgres", "postgres://u@h/db?password=pw", "postgres://u@h/db?password=xxxxx"},
		{"postgres", "host=h user=u password=pw dbname=db", "host=h user=u password=xxxxx dbname=db"},
		{"postgres", "host=h password='p w' dbname=db", "host=h password=xxxxx dbname=db"},
		{"mysql", "root:p@ss@tcp(h:3306)/db", "root:xxxxx@tcp(h:3306)/db"},
		{"mysql", "root@tcp(h:3306)/db", "root@tcp(h:3306)/db"},
		{"sqlite", "file:x.db", "file:x.db"},
	} {
		if got := redactDSN(tc.driver, tc.in); got != tc.want {
			t.Errorf("redactDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCoalesce(t *testing.T) {
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	id := ulid.Make().String()
	changes := []Change{
		{Event: ModelEvent{MessageUUID: "a", Direction: Consumed, Handler: "h", Status: StatusRetrying, Attempts: 1, LastError: "e1"},
			NewAttempts: []Attempt{{Error: "e1"}}},
		{Event: ModelEvent{MessageUUID: "a", Direction: Consumed, Handler: "h", Status: StatusRetrying, Attempts: 1, ID: id, Model: "M"},
			NewAttempts: []Attempt{{Error: "e2"}}},
		{Event: ModelEvent{MessageUUID: "a", Direction: Consumed, Handler: "g", Status: StatusSucceeded, Attempts: 1}},
		{Event: ModelEvent{MessageUUID: "a", Direction: Consumed, Handler: "h", Status: StatusSucceeded, Attempts: 1, Model: "N"},
			NewAttempts: []Attempt{{}}},
	}
	rows, rejected := coalesce(changes, now)
	if len(rejected) != 0 {
		t.Fatal(rejected)
	}
	if len(rows) != 2 || rows[0].Handler != "h" || rows[1].Handler != "g" {
		t.Fatalf("rows: %+v", rows)
	}
	r := rows[0]
	if r.ID != id || r.Attempts != 3 || r.Status != StatusSucceeded || r.LastError != "e1" || r.Model != "M" || !r.CreatedAt.Equal(now) {
		t.Fatalf("merged row: %+v", r)
	}
	if atts := r.attempts; len(atts) != 3 || atts[0].Error != "e1" || atts[1].Error != "e2" || r.clean || rows[1].clean {
		t.Fatalf("attempts: %+v", atts)
	}
	if changes[0].Event.ID != id || changes[3].Event.ID != id || changes[2].Event.ID == "" || changes[2].Event.UpdatedAt != now {
		t.Fatalf("changes not filled in: %+v", changes)
	}
}

func TestEscapeLike(t *testing.T) {
	if got := escapeLike(`50%_a!b\`); got != `50!%!_a!!b\` {
		t.Fatalf("escapeLike = %q", got)
	}
}

func BenchmarkWrite(b *testing.B) {
	for _, be := range testBackends {
		for _, size := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", be.name, size), func(b *testing.B) {
				s := openStore(b, be.name, be.setup(b), true)
				ctx := context.Background()
				payload := bytes.Repeat([]byte("x"), 256)
				seq := 0
				batch := make([]Change, size)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for j := range batch {
						seq++
						now := time.Now()
						batch[j] = Change{
							Event: ModelEvent{
								MessageUUID: fmt.Sprintf("bench-%d", seq), Direction: Consumed, Handler: "h",
								Topic: "bench", Backend: "memory", Payload: payload, Status: StatusSucceeded, Attempts: 1,
								Metadata: map[string]string{"correlation_id": "c"},
							},
							NewAttempts: []Attempt{{StartedAt: now, Duration: time.Millisecond}},
						}
					}
					if err := s.Write(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

// TestWriteSmallBatchWithStoredRow writes a small batch of clean rows, one of which is
// stored already (a redelivery): the one-statement insert of small batches
// (insertAlone) inserts the new rows, sees that one was skipped, and the transactional
// path updates the stored row without duplicating the new ones.
func TestWriteSmallBatchWithStoredRow(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQLStore) {
		first := []Change{consumed("msg-a", "billing", StatusSucceeded, 1, "")}
		mustWrite(t, s, first...)
		stored := first[0].Event.ID
		batch := []Change{
			consumed("msg-b", "billing", StatusSucceeded, 1, ""),
			consumed("msg-a", "billing", StatusSucceeded, 1, ""),
			consumed("msg-c", "billing", StatusSucceeded, 1, ""),
		}
		mustWrite(t, s, batch...)
		if batch[1].Event.ID != stored {
			t.Fatalf("the stored row's change got id %s, want %s", batch[1].Event.ID, stored)
		}
		rows := listAll(t, s, Filter{})
		if len(rows) != 3 {
			t.Fatalf("%d rows, want 3: %+v", len(rows), rows)
		}
		for _, r := range rows {
			want := 1
			if r.MessageUUID == "msg-a" {
				want = 2
			}
			if r.Attempts != want || r.Status != StatusSucceeded {
				t.Fatalf("row %s: attempts %d, status %s; want %d, succeeded", r.MessageUUID, r.Attempts, r.Status, want)
			}
		}
	})
}
