package admin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/admin"
	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

// countingStore is the SQL store counting its Get and GetMany calls, and the ids its
// GetMany calls asked for.
type countingStore struct {
	*modelevent.SQLStore
	gets, getManys, getManyIDs atomic.Int64
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

// reads is how many Get and GetMany calls s served since the last call, and the ids
// the GetMany calls asked for.
func (s *countingStore) reads() (gets, getManys, getManyIDs int64) {
	return s.gets.Swap(0), s.getManys.Swap(0), s.getManyIDs.Swap(0)
}

// A bulk action on checked rows reads the selected events once per request, in one
// GetMany, and answers the same in its dry run and its action: an id that is no longer
// in the store (pruned or deleted since the page was shown) counts as failed with its
// reason, and the rest of the selection is acted on.
func TestBulkSelectionUnknownID(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.publish(2) // per message: a produced row, billing succeeded, shipping poisoned
	s := &countingStore{SQLStore: e.store}
	insp := control.NewInspector(s, control.NewStore(e.store), control.InspectorOptions{CommandTTL: time.Minute})
	srv := httptest.NewServer(admin.New(insp, admin.Options{}))
	t.Cleanup(srv.Close)
	console := &env{t: t, url: srv.URL + "/"} // do needs no more

	p, err := e.insp.Events(t.Context(), modelevent.Filter{}, modelevent.ListOptions{Limit: 100})
	if err != nil || len(p.Events) != 6 {
		t.Fatal(err, p)
	}
	var replayIDs, retryIDs []string
	for _, ev := range p.Events {
		replayIDs = append(replayIDs, ev.ID)
		if ev.Handler == "shipping" {
			retryIDs = append(retryIDs, ev.ID)
		}
	}
	const gone = "01ARZ3NDEKTSV4RRFFQ69G5FAV" // an event id no row has
	for _, c := range []struct {
		action   string
		ids      []string
		matched  int // what the action applies to: messages for a replay, and the unknown id
		enqueued int
	}{
		{"replay", slices.Concat(replayIDs, []string{gone}), 3, 2},
		{"retry", slices.Concat([]string{gone}, retryIDs), 3, 2},
		{"redrive", []string{retryIDs[0], gone}, 2, 1},
	} {
		sel := url.Values{"id": c.ids}
		code, body := console.do("POST", "api/events/"+c.action+"?dry_run=1", sel)
		dry := decode[control.BulkResult](t, body)
		if code != 200 || dry.Matched != c.matched || dry.Rows != len(c.ids) || dry.Failed != 1 || len(dry.Errors) != 1 || !strings.Contains(dry.Errors[0], gone) {
			t.Fatalf("%s: dry run: %d %s", c.action, code, body)
		}
		if g, gm, ids := s.reads(); g != 0 || gm != 1 || ids != int64(len(c.ids)) {
			t.Fatalf("%s: the dry run of %d selected events read %d Get, %d GetMany of %d ids", c.action, len(c.ids), g, gm, ids)
		}
		code, body = console.do("POST", "api/events/"+c.action, sel)
		res := decode[control.BulkResult](t, body)
		if code != 200 || res.Matched != dry.Matched || res.Rows != dry.Rows || res.Failed != dry.Failed || !reflect.DeepEqual(res.Errors, dry.Errors) || res.Enqueued != c.enqueued {
			t.Fatalf("%s: action: %d %s; its dry run said %+v", c.action, code, body, dry)
		}
		if g, gm, ids := s.reads(); g != 0 || gm != 1 || ids != int64(len(c.ids)) {
			t.Fatalf("%s: the action on %d selected events read %d Get, %d GetMany of %d ids", c.action, len(c.ids), g, gm, ids)
		}
	}

	// Without JavaScript the confirmation page says so.
	code, body := console.do("POST", "api/events/retry", url.Values{"id": {retryIDs[0], gone}, "next": {"events"}})
	if code != http.StatusOK || !strings.Contains(body, "Retry the 2 events selected? 1 of them is no longer in the store: it counts as failed.") {
		t.Fatalf("confirmation of a selection with an unknown id: %d %s", code, body)
	}
}
