package modelevent

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// idAt returns a new ULID of time t: the id of a row first recorded at t.
func idAt(t time.Time) string { return ulid.MustNew(ulid.Timestamp(t), rand.Reader).String() }

// agedChange is a consumed change of a row recorded age ago, with attempts failed
// attempts before its last one.
func agedChange(uuid string, age time.Duration, status Status, failed int) Change {
	at := time.Now().Add(-age)
	c := consumed(uuid, "billing", status, failed+1, "")
	c.Event.ID, c.Event.CreatedAt, c.Event.UpdatedAt = idAt(at), at, at
	for i := 0; i < failed; i++ {
		c.NewAttempts = append(c.NewAttempts, Attempt{StartedAt: at, Duration: time.Millisecond, Error: "boom"})
		c.Event.LastError = "boom"
	}
	last := Attempt{StartedAt: at, Duration: time.Millisecond}
	if status != StatusSucceeded {
		last.Error = "boom"
	}
	c.NewAttempts = append(c.NewAttempts, last)
	return c
}

func countRows(t *testing.T, s *SQLStore, table string) int64 {
	t.Helper()
	var n int64
	if err := s.DB().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func attemptsOf(t *testing.T, s *SQLStore, uuid string) int64 {
	t.Helper()
	var n int64
	if err := s.DB().QueryRow(s.dialect.rebind(`SELECT COUNT(*) FROM eventbus_attempts WHERE message_uuid = ?`), uuid).Scan(&n); err != nil {
		t.Fatalf("count attempts: %v", err)
	}
	return n
}

func TestPrune(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQLStore) {
		ctx := context.Background()
		day := 24 * time.Hour
		mustWrite(t, s,
			agedChange("old-ok-1", 10*day, StatusSucceeded, 0),
			agedChange("old-ok-2", 9*day, StatusSucceeded, 0),
			agedChange("old-ok-retried", 8*day, StatusSucceeded, 2),
			agedChange("new-ok", time.Hour, StatusSucceeded, 0),
			agedChange("old-failed", 10*day, StatusFailed, 2), // younger than its 30d
			agedChange("older-poisoned", 40*day, StatusPoisoned, 3),
			agedChange("old-retrying", 40*day, StatusRetrying, 1), // work in progress: kept
			agedChange("old-pending", 40*day, StatusPending, 0),
		)
		prod := Change{Event: ModelEvent{MessageUUID: "old-pub", Direction: Produced, Topic: "orders", Status: StatusPublished, Attempts: 1}}
		at := time.Now().Add(-10 * day)
		prod.Event.ID, prod.Event.CreatedAt = idAt(at), at
		mustWrite(t, s, prod)
		// Finished and pending commands, old and new.
		for i, c := range []struct {
			status string
			age    time.Duration
		}{{"succeeded", 10 * day}, {"expired", 10 * day}, {"pending", 10 * day}, {"failed", time.Hour}} {
			created := time.Now().Add(-c.age)
			if _, err := s.DB().Exec(s.dialect.rebind(`INSERT INTO eventbus_commands (id, kind, event_id, consumer, process_id, status, claimed_by, result, error, created_at, claimed_at, finished_at, expires_at)
VALUES (?, 'retry', '', '', '', ?, '', '', '', ?, 0, ?, ?)`), idAt(created), c.status, created.UnixMicro(), created.UnixMicro(), created.Add(time.Minute).UnixMicro()); err != nil {
				t.Fatalf("insert command %d: %v", i, err)
			}
		}
		events, attempts := countRows(t, s, "eventbus_events"), countRows(t, s, "eventbus_attempts")
		if events != 9 {
			t.Fatalf("seeded %d events, want 9", events)
		}

		opts := PruneOptions{
			MaxAge:        map[Status]time.Duration{StatusSucceeded: 7 * day, StatusPublished: 7 * day, StatusFailed: 30 * day, StatusPoisoned: 30 * day},
			CommandMaxAge: 7 * day,
			BatchSize:     2,
			Pause:         -1,
		}
		dry := opts
		dry.DryRun = true
		got, err := s.Prune(ctx, dry)
		if err != nil {
			t.Fatalf("dry run: %v", err)
		}
		wantBy := map[Status]int64{StatusSucceeded: 3, StatusPublished: 1, StatusPoisoned: 1}
		wantAttempts := int64(3 + 4) // old-ok-retried's and older-poisoned's histories
		if !got.DryRun || got.Events != 5 || got.Attempts != wantAttempts || got.Commands != 2 || fmt.Sprint(got.ByStatus) != fmt.Sprint(wantBy) {
			t.Errorf("dry run = %+v, want 5 events %v, %d attempts, 2 commands", got, wantBy, wantAttempts)
		}
		if n := countRows(t, s, "eventbus_events"); n != events {
			t.Fatalf("dry run deleted events: %d left of %d", n, events)
		}
		if n := countRows(t, s, "eventbus_attempts"); n != attempts {
			t.Fatalf("dry run deleted attempts: %d left of %d", n, attempts)
		}
		if n := countRows(t, s, "eventbus_commands"); n != 4 {
			t.Fatalf("dry run deleted commands: %d left of 4", n)
		}

		got, err = s.Prune(ctx, opts)
		if err != nil {
			t.Fatalf("Prune: %v", err)
		}
		if got.DryRun || got.Events != 5 || got.Attempts != wantAttempts || got.Commands != 2 || fmt.Sprint(got.ByStatus) != fmt.Sprint(wantBy) {
			t.Errorf("Prune = %+v, want 5 events %v, %d attempts, 2 commands", got, wantBy, wantAttempts)
		}
		left := map[string]Status{}
		for _, e := range listAll(t, s, Filter{}) {
			left[e.MessageUUID] = e.Status
		}
		want := map[string]Status{"new-ok": StatusSucceeded, "old-failed": StatusFailed, "old-retrying": StatusRetrying, "old-pending": StatusPending}
		if fmt.Sprint(left) != fmt.Sprint(want) {
			t.Errorf("rows left %v, want %v", left, want)
		}
		for _, uuid := range []string{"old-ok-retried", "older-poisoned"} {
			if n := attemptsOf(t, s, uuid); n != 0 {
				t.Errorf("%s: %d attempts left after its row went", uuid, n)
			}
		}
		if n := attemptsOf(t, s, "old-failed"); n != 3 {
			t.Errorf("old-failed kept %d attempts, want 3", n)
		}
		if n := countRows(t, s, "eventbus_commands"); n != 2 {
			t.Errorf("%d commands left, want 2 (the pending and the recent one)", n)
		}
		// Nothing more to do: a second run deletes nothing.
		if got, err := s.Prune(ctx, opts); err != nil || got.Events != 0 || got.Commands != 0 {
			t.Errorf("second Prune = %+v, %v; want nothing", got, err)
		}
	})
}

func TestPruneMaxRows(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQLStore) {
		ctx := context.Background()
		var changes []Change
		for i := 0; i < 10; i++ {
			st := StatusSucceeded
			if i == 1 {
				st = StatusPending // the second oldest: kept although beyond the cap
			}
			changes = append(changes, agedChange(fmt.Sprintf("m%02d", i), time.Duration(20-i)*time.Minute, st, 0))
		}
		mustWrite(t, s, changes...)
		got, err := s.Prune(ctx, PruneOptions{MaxRows: 4, BatchSize: 3, Pause: -1})
		if err != nil {
			t.Fatalf("Prune: %v", err)
		}
		if got.Events != 5 {
			t.Errorf("Prune deleted %d rows, want 5", got.Events)
		}
		var left []string
		for _, e := range listAll(t, s, Filter{}) {
			left = append(left, e.MessageUUID)
		}
		if fmt.Sprint(left) != "[m09 m08 m07 m06 m01]" {
			t.Errorf("rows left %v, want the newest 4 and the pending one", left)
		}
	})
}

func TestPruneKeepsRowsThatChangedStatus(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQLStore) {
		mustWrite(t, s, agedChange("a", 40*24*time.Hour, StatusFailed, 1), agedChange("b", 40*24*time.Hour, StatusFailed, 1))
		batch, err := s.selectPruneBatch(context.Background(), `SELECT id, message_uuid, direction, handler, status FROM eventbus_events ORDER BY id`, nil)
		if err != nil || len(batch) != 2 {
			t.Fatalf("select: %v, %d rows", err, len(batch))
		}
		// A retry moves "b" on after the pruner looked it up.
		mustWrite(t, s, consumed("b", "billing", StatusRetrying, 1, "again"))
		var res PruneResult
		res.ByStatus = map[Status]int64{}
		if _, err := s.deleteBatch(context.Background(), batch, "status IN (?)", []any{string(StatusFailed)}, &res); err != nil {
			t.Fatalf("deleteBatch: %v", err)
		}
		if res.Events != 1 || attemptsOf(t, s, "a") != 0 || attemptsOf(t, s, "b") != 2 {
			t.Errorf("deleted %d rows, attempts left a=%d b=%d; want 1 row, a=0 b=2", res.Events, attemptsOf(t, s, "a"), attemptsOf(t, s, "b"))
		}
	})
}

func TestPruneRejectsUnknownStatus(t *testing.T) {
	s := openStore(t, DialectSQLite, setupSQLite(t), true)
	if _, err := s.Prune(context.Background(), PruneOptions{MaxAge: map[Status]time.Duration{"done": time.Hour}}); err == nil {
		t.Fatal("Prune with status \"done\" succeeded")
	}
}

func TestLease(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQLStore) {
		ctx := context.Background()
		acquire := func(holder string, ttl time.Duration) bool {
			t.Helper()
			ok, err := s.AcquireLease(ctx, RetentionLease, holder, ttl, "info of "+holder)
			if err != nil {
				t.Fatalf("AcquireLease(%s): %v", holder, err)
			}
			return ok
		}
		if l, err := s.GetLease(ctx, RetentionLease); err != nil || l.Held(time.Now()) {
			t.Fatalf("GetLease before any = %+v, %v", l, err)
		}
		if !acquire("a", time.Minute) {
			t.Fatal("a did not get a free lease")
		}
		if acquire("b", time.Minute) {
			t.Fatal("b took the lease a holds")
		}
		if !acquire("a", time.Minute) {
			t.Fatal("a could not renew its lease")
		}
		l, err := s.GetLease(ctx, RetentionLease)
		if err != nil || l.Holder != "a" || l.Info != "info of a" || !l.Held(time.Now()) {
			t.Fatalf("GetLease = %+v, %v; want held by a", l, err)
		}
		if err := s.ReleaseLease(ctx, RetentionLease, "b"); err != nil {
			t.Fatal(err)
		}
		if acquire("b", time.Minute) {
			t.Fatal("b's release of a's lease freed it")
		}
		if err := s.ReleaseLease(ctx, RetentionLease, "a"); err != nil {
			t.Fatal(err)
		}
		if !acquire("b", 50*time.Millisecond) {
			t.Fatal("b did not get the lease a released")
		}
		time.Sleep(100 * time.Millisecond)
		if !acquire("a", time.Minute) {
			t.Fatal("a did not get the lease b let expire")
		}

		// Of processes racing for a lease nobody holds, exactly one wins.
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := s.AcquireLease(ctx, "race", fmt.Sprintf("p%d", i), time.Minute, "")
				if err != nil {
					t.Errorf("AcquireLease: %v", err)
				}
				if ok {
					mu.Lock()
					won++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if won != 1 {
			t.Errorf("%d of 8 racing processes got the lease, want 1", won)
		}
	})
}

func TestOldest(t *testing.T) {
	s := openStore(t, DialectSQLite, setupSQLite(t), true)
	if id, _, err := s.Oldest(context.Background()); err != nil || id != "" {
		t.Fatalf("Oldest of an empty store = %q, %v", id, err)
	}
	old := agedChange("x", 48*time.Hour, StatusSucceeded, 0)
	mustWrite(t, s, agedChange("y", time.Hour, StatusSucceeded, 0), old)
	id, at, err := s.Oldest(context.Background())
	if err != nil || id != old.Event.ID || at.Sub(old.Event.CreatedAt).Abs() > time.Millisecond {
		t.Fatalf("Oldest = %s %v, %v; want %s %v", id, at, err, old.Event.ID, old.Event.CreatedAt)
	}
}

// TestSQLiteIncrementalVacuum prunes a database created with auto_vacuum INCREMENTAL:
// the free pages beyond a quarter of those in use go back to the file system.
func TestSQLiteIncrementalVacuum(t *testing.T) {
	path := setupSQLite(t)
	s := openStore(t, DialectSQLite, "file:"+path+"?_pragma=auto_vacuum(INCREMENTAL)", true)
	var changes []Change
	for i := 0; i < 3000; i++ {
		changes = append(changes, agedChange(fmt.Sprint("m", i), 48*time.Hour, StatusSucceeded, 0))
	}
	mustWrite(t, s, changes...)
	pages := func() int64 {
		var n int64
		if err := s.DB().QueryRow(`PRAGMA page_count`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := pages()
	res, err := s.Prune(context.Background(), PruneOptions{MaxAge: map[Status]time.Duration{StatusSucceeded: time.Hour}, Pause: -1})
	if err != nil || res.Events != 3000 {
		t.Fatalf("Prune = %+v, %v", res, err)
	}
	if res.FreedPages == 0 || pages() >= before-res.FreedPages/2 {
		t.Fatalf("freed %d pages; %d pages before, %d after", res.FreedPages, before, pages())
	}
	// Without auto_vacuum (the default) the free pages stay for new rows.
	s2 := openStore(t, DialectSQLite, setupSQLite(t), true)
	mustWrite(t, s2, changes[:100]...)
	if res, err := s2.Prune(context.Background(), PruneOptions{MaxAge: map[Status]time.Duration{StatusSucceeded: time.Hour}, Pause: -1}); err != nil || res.FreedPages != 0 {
		t.Fatalf("Prune without auto_vacuum = %+v, %v", res, err)
	}
}
