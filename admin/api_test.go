package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/admin"
	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return v
}

type listBody struct {
	Events     []modelevent.ModelEvent `json:"events"`
	NextCursor string                  `json:"next_cursor"`
}

func TestAPI(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.publish(3)
	ctx := context.Background()

	// List with filters and cursor pagination.
	code, body := e.do("GET", "api/events?status=poisoned&limit=2", nil)
	if code != 200 {
		t.Fatalf("list: %d %s", code, body)
	}
	page := decode[listBody](t, body)
	if len(page.Events) != 2 || page.NextCursor == "" || page.Events[0].Handler != "shipping" {
		t.Fatalf("page 1 = %+v", page)
	}
	_, body = e.do("GET", "api/events?status=poisoned&limit=2&cursor="+page.NextCursor, nil)
	if p2 := decode[listBody](t, body); len(p2.Events) != 1 || p2.NextCursor != "" {
		t.Fatalf("page 2 = %+v", p2)
	}
	_, body = e.do("GET", "api/events?direction=produced&q=order%22%3A1", nil)
	if p := decode[listBody](t, body); len(p.Events) != 1 {
		t.Fatalf("text search = %+v", p)
	}
	_, body = e.do("GET", "api/events?correlation_id=flow-0&direction=consumed&handler=billing", nil)
	if p := decode[listBody](t, body); len(p.Events) != 2 {
		t.Fatalf("correlation filter = %d rows", len(p.Events))
	}
	_, body = e.do("GET", "api/events?since=1h&until="+url.QueryEscape(time.Now().Add(time.Minute).UTC().Format(time.RFC3339)), nil)
	if p := decode[listBody](t, body); len(p.Events) != 9 {
		t.Fatalf("time range = %d rows", len(p.Events))
	}

	// Stats, detail.
	code, body = e.do("GET", "api/stats", nil)
	st := decode[modelevent.Stats](t, body)
	if code != 200 || st.Total != 9 || st.ByStatus[modelevent.StatusPoisoned] != 3 {
		t.Fatalf("stats = %d %+v", code, st)
	}
	poisoned := page.Events[0]
	code, body = e.do("GET", "api/events/"+strings.ToLower(poisoned.ID), nil)
	ev := decode[modelevent.ModelEvent](t, body)
	if code != 200 || ev.ID != poisoned.ID || len(ev.History) != 1 || ev.History[0].Error == "" {
		t.Fatalf("detail = %d %+v", code, ev)
	}

	// Retry one event through a command, once the carrier is back.
	e.failing.Store(false)
	code, body = e.do("POST", "api/events/"+poisoned.ID+"/retry", url.Values{})
	out := decode[struct {
		OK      bool             `json:"ok"`
		Command *control.Command `json:"command"`
	}](t, body)
	if code != 200 || !out.OK || out.Command == nil {
		t.Fatalf("retry = %d %s", code, body)
	}
	e.eventually("the retry command succeeded", func() bool {
		_, body := e.do("GET", "api/commands/"+out.Command.ID, nil)
		return decode[control.Command](t, body).Status == control.CommandSucceeded
	})
	if ev, _ := e.insp.Event(ctx, poisoned.ID); ev.Status != modelevent.StatusSucceeded {
		t.Fatalf("after retry: %s", ev.Status)
	}

	// Redrive refuses a non-poisoned event; replay enqueues.
	code, body = e.do("POST", "api/events/"+poisoned.ID+"/redrive", url.Values{})
	if code != http.StatusConflict || !strings.Contains(body, "only a poisoned") {
		t.Fatalf("redrive of succeeded = %d %s", code, body)
	}
	other := decode[listBody](t, mustGet(t, e, "api/events?status=poisoned")).Events[0]
	code, body = e.do("POST", "api/events/"+other.ID+"/redrive", url.Values{})
	if code != 200 || !strings.Contains(body, `"command"`) {
		t.Fatalf("redrive = %d %s", code, body)
	}

	// Bulk: a dry run counts, then retry every poisoned event (the redriven one stays
	// poisoned: the redrive is a new message).
	code, body = e.do("POST", "api/events/retry?status=poisoned&dry_run=1", url.Values{})
	if code != 200 || decode[control.BulkResult](t, body).Matched != 2 {
		t.Fatalf("dry run = %d %s", code, body)
	}
	code, body = e.do("POST", "api/events/retry", url.Values{"status": {"poisoned"}})
	if res := decode[control.BulkResult](t, body); code != 200 || res.Matched != 2 || res.Enqueued != 2 {
		t.Fatalf("bulk retry = %d %s", code, body)
	}
	code, body = e.do("POST", "api/events/replay", url.Values{"direction": {"produced"}, "q": {`"order":2`}})
	if res := decode[control.BulkResult](t, body); code != 200 || res.Matched != 1 || res.Enqueued != 1 {
		t.Fatalf("bulk replay = %d %s", code, body)
	}

	// Processes, consumers, stop and start, commands.
	code, body = e.do("GET", "api/processes", nil)
	ps := decode[[]control.Process](t, body)
	if code != 200 || len(ps) != 1 || ps[0].Name != "worker-1" || len(ps[0].Consumers) != 2 {
		t.Fatalf("processes = %d %s", code, body)
	}
	code, body = e.do("POST", "api/consumers/billing/stop", url.Values{"process": {ps[0].ID}})
	if code != 200 || !strings.Contains(body, `"desired": "stopped"`) {
		t.Fatalf("stop = %d %s", code, body)
	}
	e.eventually("billing stopped", func() bool {
		c, _ := e.bus.Consumer("billing")
		return c.State == "stopped"
	})
	code, body = e.do("GET", "api/consumers", nil)
	cs := decode[[]control.ConsumerView](t, body)
	if code != 200 || len(cs) != 2 || cs[0].Name != "billing" {
		t.Fatalf("consumers = %s", body)
	}
	e.eventually("the console shows billing stopped", func() bool {
		cs := decode[[]control.ConsumerView](t, mustGet(t, e, "api/consumers"))
		return cs[0].Stopped == 1 && cs[0].Running == 0
	})
	code, _ = e.do("POST", "api/consumers/billing/start", url.Values{})
	if code != 200 {
		t.Fatalf("start = %d", code)
	}
	e.eventually("billing running", func() bool {
		c, _ := e.bus.Consumer("billing")
		return c.State == "running"
	})
	code, body = e.do("POST", "api/consumers/nobody/stop", url.Values{})
	if code != 404 || !strings.Contains(body, "unknown consumer") {
		t.Fatalf("unknown consumer = %d %s", code, body)
	}
	code, body = e.do("GET", "api/commands?limit=10", nil)
	if cmds := decode[[]control.Command](t, body); code != 200 || len(cmds) < 4 {
		t.Fatalf("commands = %d %s", code, body)
	}

	// Overview.
	code, body = e.do("GET", "api/overview?since=15m", nil)
	ov := decode[struct {
		Timeline  []modelevent.TimelinePoint  `json:"timeline"`
		Slowest   []modelevent.HandlerLatency `json:"slowest_handlers"`
		TopErrors []control.ErrorGroup        `json:"top_errors"`
	}](t, body)
	if code != 200 || len(ov.Timeline) == 0 || len(ov.Slowest) == 0 {
		t.Fatalf("overview = %d %s", code, body)
	}
}

func mustGet(t *testing.T, e *env, path string) string {
	t.Helper()
	code, body := e.do("GET", path, nil)
	if code != 200 {
		t.Fatalf("GET %s = %d %s", path, code, body)
	}
	return body
}
