package control_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

// countingStore is the SQL store counting its reads of events by call, and the ids
// its GetMany calls asked for.
type countingStore struct {
	*modelevent.SQLStore
	gets, getManys, getManyIDs, lists atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, id string) (modelevent.ModelEvent, error) {
	s.gets.Add(1)
	return s.SQLStore.Get(ctx, id)
}

func (s *countingStore) GetMany(ctx context.Context, ids []string) ([]modelevent.ModelEvent, error) {
	s.getManys.Add(1)
	s.getManyIDs.Add(int64(len(ids)))
	return s.SQLStore.GetMany(ctx, ids)
}

func (s *countingStore) List(ctx context.Context, f modelevent.Filter, opts modelevent.ListOptions) (modelevent.Page, error) {
	s.lists.Add(1)
	return s.SQLStore.List(ctx, f, opts)
}

// reads is how many reads of events s served since the last call.
func (s *countingStore) reads() (gets, getManys, lists int64) {
	s.getManyIDs.Store(0)
	return s.gets.Swap(0), s.getManys.Swap(0), s.lists.Swap(0)
}

// selectionReads is how many reads of events s served since the last call, with the
// ids its GetMany calls asked for.
func (s *countingStore) selectionReads() (gets, getManys, getManyIDs, lists int64) {
	return s.gets.Swap(0), s.getManys.Swap(0), s.getManyIDs.Swap(0), s.lists.Swap(0)
}

// countedInspector returns an Inspector over sql, through a countingStore, with a live
// process running consumer billing of topic orders.
func countedInspector(t *testing.T, sql *modelevent.SQLStore) (*countingStore, *control.Inspector) {
	t.Helper()
	s := &countingStore{SQLStore: sql}
	ctl := control.NewStore(sql)
	must(t, ctl.Heartbeat(context.Background(), control.Process{ID: "p1", Started: time.Now(), HeartbeatInterval: time.Minute,
		Consumers: []control.ConsumerStatus{{Name: "billing", Topic: "orders", State: control.Running}}}))
	return s, control.NewInspector(s, ctl, control.InspectorOptions{})
}

// write stores evs and returns their ids.
func write(t *testing.T, s modelevent.Store, evs ...modelevent.ModelEvent) []string {
	t.Helper()
	changes := make([]modelevent.Change, len(evs))
	for i, ev := range evs {
		if ev.CreatedAt.IsZero() {
			ev.CreatedAt, ev.UpdatedAt = time.Now(), time.Now()
		}
		changes[i] = modelevent.Change{Event: ev}
	}
	must(t, s.Write(context.Background(), changes))
	ids := make([]string, len(changes))
	for i, c := range changes {
		if c.Event.ID == "" {
			t.Fatalf("Write left change %d without an id", i)
		}
		ids[i] = c.Event.ID
	}
	return ids
}

// TestSelectionUnknownID: a selection is read once, in one GetMany of its distinct ids,
// and its dry run and its action agree: an id that is no event counts as failed with
// its reason in both, and the rest of the selection is acted on.
func TestSelectionUnknownID(t *testing.T) {
	for name, sql := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, insp := countedInspector(t, sql)
			m1, m2 := watermill.NewUUID(), watermill.NewUUID()
			ids := write(t, s,
				modelevent.ModelEvent{MessageUUID: m1, Direction: modelevent.Produced, Topic: "orders", Status: modelevent.StatusPublished, Attempts: 1},
				modelevent.ModelEvent{MessageUUID: m1, Direction: modelevent.Consumed, Topic: "orders", Handler: "billing", Status: modelevent.StatusPoisoned, Attempts: 1, LastError: "boom"},
				modelevent.ModelEvent{MessageUUID: m2, Direction: modelevent.Consumed, Topic: "orders", Handler: "billing", Status: modelevent.StatusPoisoned, Attempts: 1, LastError: "boom"},
			)
			produced, c1, c2 := ids[0], ids[1], ids[2]
			const gone = "01ARZ3NDEKTSV4RRFFQ69G5FAV" // an event id no row has
			s.reads()

			for _, c := range []struct {
				kind     control.CommandKind
				ids      []string
				rows     int
				targets  []string
				enqueued int
			}{
				// The produced row and c1 are one message: replayed once.
				{control.Replay, []string{c1, produced, gone, c2, c1}, 4, []string{c1, c2}, 2},
				// c1 spelled in lower case is c1: one row, read and acted on once.
				{control.Retry, []string{gone, c1, c2, strings.ToLower(c1)}, 3, []string{c1, c2}, 2},
				{control.Redrive, []string{c2, gone}, 2, []string{c2}, 1},
			} {
				sel, err := insp.SelectionTargets(ctx, c.kind, c.ids)
				if err != nil {
					t.Fatalf("%s: SelectionTargets: %v", c.kind, err)
				}
				var targets []string
				for _, ev := range sel.Targets {
					targets = append(targets, ev.ID)
				}
				if sel.Rows != c.rows || !reflect.DeepEqual(targets, c.targets) || len(sel.Unknown) != 1 || !strings.Contains(sel.Unknown[0], gone) {
					t.Fatalf("%s: selection = rows %d, targets %v, unknown %q; want rows %d, targets %v, %s unknown", c.kind, sel.Rows, targets, sel.Unknown, c.rows, c.targets, gone)
				}
				if g, gm, ids, l := s.selectionReads(); g != 0 || gm != 1 || ids != int64(c.rows) || l != 0 {
					t.Fatalf("%s: reading a selection of %d events took %d Get, %d GetMany of %d ids, %d List; want one GetMany of %[2]d",
						c.kind, c.rows, g, gm, ids, l)
				}
				dry := sel.Counts()
				want := control.BulkResult{Matched: len(c.targets) + 1, Rows: c.rows, Failed: 1, Errors: sel.Unknown}
				if !reflect.DeepEqual(dry, want) {
					t.Fatalf("%s: dry run = %+v, want %+v", c.kind, dry, want)
				}
				res := insp.ApplySelection(ctx, sel)
				if res.Matched != dry.Matched || res.Rows != dry.Rows || res.Failed != dry.Failed || !reflect.DeepEqual(res.Errors, dry.Errors) ||
					res.Enqueued != c.enqueued || res.Done != 0 || len(res.Commands) != c.enqueued {
					t.Fatalf("%s: action = %+v; its dry run said %+v", c.kind, res, dry)
				}
				if g, gm, l := s.reads(); g != 0 || gm != 0 || l != 0 {
					t.Fatalf("%s: acting on the selection read again: %d Get, %d GetMany, %d List", c.kind, g, gm, l)
				}
				// BulkEvents is the two in one: the same result, the same reads.
				res2, err := insp.BulkEvents(ctx, c.kind, c.ids)
				if err != nil || res2.Matched != res.Matched || res2.Failed != res.Failed || res2.Enqueued != res.Enqueued {
					t.Fatalf("%s: BulkEvents = %+v, %v; want %+v", c.kind, res2, err, res)
				}
				if g, gm, ids, l := s.selectionReads(); g != 0 || gm != 1 || ids != int64(c.rows) || l != 0 {
					t.Fatalf("%s: BulkEvents read %d Get, %d GetMany of %d ids, %d List for a selection of %d", c.kind, g, gm, ids, l, c.rows)
				}
			}

			// A selection of unknown ids only, or of none: nothing to do, nothing fails
			// but those ids.
			sel, err := insp.SelectionTargets(ctx, control.Retry, []string{gone, "not-an-id"})
			if err != nil || len(sel.Targets) != 0 || len(sel.Unknown) != 2 {
				t.Fatalf("unknown ids only: %+v, %v", sel, err)
			}
			if res := insp.ApplySelection(ctx, sel); res.Matched != 2 || res.Failed != 2 || res.Enqueued != 0 {
				t.Fatalf("unknown ids only: %+v", res)
			}
			// The malformed id is not sent to the store; its reason says it is malformed.
			if g, gm, ids, _ := s.selectionReads(); g != 0 || gm != 1 || ids != 1 || !strings.Contains(sel.Unknown[1], "malformed id") {
				t.Fatalf("unknown ids only: %d Get, %d GetMany of %d ids; unknown %q", g, gm, ids, sel.Unknown)
			}
			if sel, err := insp.SelectionTargets(ctx, control.Retry, nil); err != nil || sel.Rows != 0 || len(sel.Targets)+len(sel.Unknown) != 0 {
				t.Fatalf("no ids: %+v, %v", sel, err)
			}
			if g, gm, _, l := s.selectionReads(); g+gm+l != 0 {
				t.Fatalf("no ids: %d Get, %d GetMany, %d List", g, gm, l)
			}
			if _, err := insp.SelectionTargets(ctx, "archive", []string{c1}); err == nil {
				t.Fatal("SelectionTargets took an action that is none")
			}
		})
	}
}

// TestNotAnAction: a bulk action whose kind is none is refused in the same words by
// Bulk, SelectionTargets and ApplySelection (a Selection built by hand).
func TestNotAnAction(t *testing.T) {
	ctx := context.Background()
	sql, err := modelevent.Open(ctx, "sqlite", "file:"+filepath.Join(t.TempDir(), "a.db"))
	must(t, err)
	t.Cleanup(func() { sql.Close() })
	must(t, sql.Migrate(ctx))
	insp := control.NewInspector(sql, control.NewStore(sql), control.InspectorOptions{})
	ids := write(t, sql, modelevent.ModelEvent{MessageUUID: watermill.NewUUID(), Direction: modelevent.Consumed, Topic: "orders",
		Handler: "billing", Status: modelevent.StatusPoisoned, Attempts: 1, LastError: "boom"})
	const want = `control: "archive" is not an action (accepted: retry, replay, redrive)`
	if _, err := insp.Bulk(ctx, "archive", modelevent.Filter{}); err == nil || err.Error() != want {
		t.Fatalf("Bulk: %v; want %s", err, want)
	}
	if _, err := insp.SelectionTargets(ctx, "archive", ids); err == nil || err.Error() != want {
		t.Fatalf("SelectionTargets: %v; want %s", err, want)
	}
	ev, err := sql.Get(ctx, ids[0])
	must(t, err)
	res := insp.ApplySelection(ctx, control.Selection{Kind: "archive", Targets: []modelevent.ModelEvent{ev}, Rows: 1})
	if res.Failed != 1 || !reflect.DeepEqual(res.Errors, []string{want}) {
		t.Fatalf("ApplySelection: %+v; want one failed with %s", res, want)
	}
}

// failingStore is the SQL store whose GetMany fails, as in an outage.
type failingStore struct{ *modelevent.SQLStore }

var errOutage = errors.New("connection refused")

func (failingStore) GetMany(context.Context, []string) ([]modelevent.ModelEvent, error) {
	return nil, errOutage
}

// TestSelectionStoreFails: a store that fails to read the selection (an outage, not an
// id it does not find) fails the whole selection with its error, and nothing is acted
// on. A store without GetMany is read with one Get per id, to the same selection.
func TestSelectionStoreFails(t *testing.T) {
	ctx := context.Background()
	sql, err := modelevent.Open(ctx, "sqlite", "file:"+filepath.Join(t.TempDir(), "f.db"))
	must(t, err)
	t.Cleanup(func() { sql.Close() })
	must(t, sql.Migrate(ctx))
	ctl := control.NewStore(sql)
	must(t, ctl.Heartbeat(ctx, control.Process{ID: "p1", Started: time.Now(), HeartbeatInterval: time.Minute,
		Consumers: []control.ConsumerStatus{{Name: "billing", Topic: "orders", State: control.Running}}}))
	poisoned := func() modelevent.ModelEvent {
		return modelevent.ModelEvent{MessageUUID: watermill.NewUUID(), Direction: modelevent.Consumed, Topic: "orders",
			Handler: "billing", Status: modelevent.StatusPoisoned, Attempts: 1, LastError: "boom"}
	}
	ids := write(t, sql, poisoned(), poisoned())
	const gone = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
	selected := []string{ids[0], gone, strings.ToLower(ids[1]), ids[0]}

	insp := control.NewInspector(failingStore{sql}, ctl, control.InspectorOptions{})
	sel, err := insp.SelectionTargets(ctx, control.Retry, selected)
	if !errors.Is(err, errOutage) || sel.Rows != 0 || len(sel.Targets) != 0 || len(sel.Unknown) != 0 {
		t.Fatalf("SelectionTargets on a failing store = %+v, %v; want an empty selection and its error", sel, err)
	}
	res, err := insp.BulkEvents(ctx, control.Retry, selected)
	if !errors.Is(err, errOutage) || res.Enqueued != 0 || res.Done != 0 || res.Failed != 0 {
		t.Fatalf("BulkEvents on a failing store = %+v, %v; want nothing acted on and its error", res, err)
	}
	if cmds, err := ctl.Commands(ctx, "", 10); err != nil || len(cmds) != 0 {
		t.Fatalf("a failed selection enqueued %d commands (%v)", len(cmds), err)
	}

	// The store seen only as a modelevent.Store: no GetMany.
	insp = control.NewInspector(struct{ modelevent.Store }{sql}, ctl, control.InspectorOptions{})
	sel, err = insp.SelectionTargets(ctx, control.Retry, selected)
	var targets []string
	for _, ev := range sel.Targets {
		targets = append(targets, ev.ID)
	}
	if err != nil || sel.Rows != 3 || !reflect.DeepEqual(targets, ids) ||
		!reflect.DeepEqual(sel.Unknown, []string{`eventbus: not found: id "` + gone + `"`}) {
		t.Fatalf("SelectionTargets without GetMany = rows %d, targets %v, unknown %q, %v; want rows 3, targets %v, %s unknown",
			sel.Rows, targets, sel.Unknown, err, ids, gone)
	}
}

// TestBulkByFilterReads: a bulk action by filter lists the matching events and reads
// them again in one GetMany per chunk, not one Get (two queries) per event.
func TestBulkByFilterReads(t *testing.T) {
	for name, sql := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, insp := countedInspector(t, sql)
			topic := "bulk-" + watermill.NewShortUUID()
			var evs []modelevent.ModelEvent
			for range 7 {
				evs = append(evs, modelevent.ModelEvent{MessageUUID: watermill.NewUUID(), Direction: modelevent.Consumed, Topic: topic,
					Handler: "billing", Status: modelevent.StatusPoisoned, Attempts: 1, LastError: "boom"})
			}
			write(t, s, evs...)
			s.selectionReads()
			res, err := insp.Bulk(ctx, control.Retry, modelevent.Filter{Topic: topic})
			if err != nil || res.Matched != 7 || res.Enqueued != 7 || res.Failed != 0 {
				t.Fatalf("Bulk = %+v, %v; want 7 matched and enqueued", res, err)
			}
			if g, gm, ids, l := s.selectionReads(); g != 0 || gm != 1 || ids != 7 || l != 1 {
				t.Fatalf("a bulk retry of 7 events read %d Get, %d GetMany of %d ids, %d List; want one List and one GetMany of 7", g, gm, ids, l)
			}
		})
	}
}
