package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/admin"
	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/internal/jsonfmt"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/modelevent"
	_ "github.com/go-eventbus/eventbus/modelevent/all"
)

// TestJSONConventions fetches every JSON endpoint of the console over each store and
// walks every key of every answer (jsonfmt.Check): no null, no empty string, no zero
// time, every time RFC 3339 UTC with microseconds, durations integers, a payload JSON
// under "payload" or base64 under "payload_base64", lists [] when empty. An event
// decoded from the API encodes back to the same document (the type's own encoding
// round-trips).
func TestJSONConventions(t *testing.T) {
	for _, store := range testenv.Stores {
		t.Run(store.Driver, func(t *testing.T) {
			e := newEnvOn(t, admin.Options{}, store.Driver, store.DSN(t))
			checkAPIJSON(t, e)
		})
	}
}

func checkAPIJSON(t *testing.T, e *env) {
	ctx := context.Background()
	e.publish(2) // published, succeeded (billing), poisoned with history (shipping)
	_, err := e.bus.PublishIn(ctx, time.Hour, "orders", message.NewMessage("", []byte(`{"later":true}`)))
	must(t, err)
	now := time.Now()
	at := func(d time.Duration) time.Time { return now.Add(d) }
	must(t, e.store.Write(ctx, []modelevent.Change{
		{Event: modelevent.ModelEvent{MessageUUID: "json-retry", Direction: modelevent.Consumed, Handler: "ledger", Topic: "orders",
			Backend: "memory", Payload: []byte(`{"order":"r"}`), Metadata: map[string]string{"tenant": ""}, Status: modelevent.StatusRetrying,
			Attempts: 1, LastError: "ledger locked", CreatedAt: at(-time.Minute), UpdatedAt: at(-time.Minute)},
			NewAttempts: []modelevent.Attempt{{StartedAt: at(-time.Minute), Duration: 1500 * time.Microsecond, Error: "ledger locked"}}},
		{Event: modelevent.ModelEvent{MessageUUID: "json-binary", Direction: modelevent.Produced, Topic: "blobs", Backend: "memory",
			Payload: []byte{0xff, 0, 1}, Status: modelevent.StatusPublished, Attempts: 1, CreatedAt: at(-2 * time.Second), UpdatedAt: at(-2 * time.Second)}},
		{Event: modelevent.ModelEvent{MessageUUID: "json-empty", Direction: modelevent.Produced, Topic: "blobs", Backend: "memory",
			Status: modelevent.StatusPublished, Attempts: 1, CreatedAt: at(-time.Second), UpdatedAt: at(-time.Second)}},
	}))
	must(t, e.store.Schedule(ctx, modelevent.Scheduled{MessageUUID: "json-retry", Consumer: "ledger", Kind: modelevent.ScheduleRetry,
		Topic: "orders", NextAttemptAt: at(time.Hour), Attempts: 1, LastError: "ledger locked"}))
	report, _ := json.Marshal(control.RetentionReport{
		Policy:     control.RetentionPolicy{MaxAge: map[modelevent.Status]time.Duration{modelevent.StatusSucceeded: 24 * time.Hour}, Interval: time.Minute},
		LastRun:    at(-time.Minute),
		LastResult: &modelevent.PruneResult{Events: 3, Duration: 2 * time.Millisecond},
	})
	if ok, err := e.store.AcquireLease(ctx, modelevent.RetentionLease, "proc-json", time.Minute, string(report)); err != nil || !ok {
		t.Fatalf("AcquireLease = %v, %v", ok, err)
	}
	poisoned, err := e.insp.Events(ctx, modelevent.Filter{Statuses: []modelevent.Status{modelevent.StatusPoisoned}}, modelevent.ListOptions{Limit: 1})
	if err != nil || len(poisoned.Events) != 1 {
		t.Fatalf("a poisoned row: %v %+v", err, poisoned)
	}
	// A command that the live bus claims and finishes (claimed_at, finished_at), and
	// a consumer that has had messages (last_message_at).
	status, body := e.do("POST", "api/events/"+poisoned.Events[0].ID+"/retry", url.Values{})
	out := decode[struct {
		Command *control.Command `json:"command"`
	}](t, body)
	if status != http.StatusOK || out.Command == nil {
		t.Fatalf("retry: %d %s", status, body)
	}
	e.eventually("the command finished", func() bool {
		c, err := e.insp.Command(ctx, out.Command.ID)
		return err == nil && c.Status.Done()
	})
	e.eventually("a consumer's last message reported", func() bool {
		ps, _ := e.insp.Processes(ctx)
		for _, p := range ps {
			for _, c := range p.Consumers {
				if !c.LastMessageAt.IsZero() {
					return true
				}
			}
		}
		return false
	})

	all, err := e.insp.Events(ctx, modelevent.Filter{}, modelevent.ListOptions{Limit: 1000})
	must(t, err)
	gets := []string{"api/events", "api/events?limit=2", "api/events?topic=nothing", "api/stats", "api/stats?topic=nothing",
		"api/overview", "api/overview?since=1970-01-01", "api/overview?topic=nothing", "api/processes", "api/consumers",
		"api/commands", "api/commands/" + out.Command.ID, "api/scheduled", "api/scheduled?kind=retry", "api/scheduled?kind=publish",
		"api/events?status=bogus", "api/events/01ARZ3NDEKTSV4RRFFQ69G5FAV"}
	for _, ev := range all.Events {
		gets = append(gets, "api/events/"+ev.ID)
	}
	seen := map[string]bool{}
	check := func(what string, status int, body string) {
		t.Helper()
		if status >= 500 {
			t.Fatalf("%s: %d %s", what, status, body)
		}
		problems, keys := jsonfmt.Check([]byte(body))
		for _, p := range problems {
			t.Errorf("%s: %s", what, p)
		}
		for k := range keys {
			seen[k] = true
		}
	}
	for _, path := range gets {
		status, body := e.do("GET", path, nil)
		check("GET "+path, status, body)
	}
	// Each event decodes to what the store holds and encodes back to the same document
	// (before the actions below change the rows).
	for _, ev := range all.Events {
		_, body := e.do("GET", "api/events/"+ev.ID, nil)
		got := decode[modelevent.ModelEvent](t, body)
		want, err := e.insp.Event(ctx, ev.ID)
		must(t, err)
		again, _ := json.MarshalIndent(got, "", "  ")
		if strings.TrimSpace(body) != string(again) {
			t.Errorf("event %s does not round-trip:\n%s\nthen\n%s", ev.ID, body, again)
		}
		if !samePayload(got.Payload, want.Payload) || !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) || len(got.History) != len(want.History) {
			t.Errorf("event %s decoded as %+v, stored %+v", ev.ID, got, want)
		}
	}

	for _, path := range []string{"api/events/retry?status=poisoned&dry_run=1", "api/events/replay?topic=nothing",
		"api/events/retry?topic=orders&handler=shipping&status=poisoned", "api/consumers/billing/stop", "api/consumers/billing/start",
		"api/events/" + all.Events[0].ID + "/replay", "api/scheduled/" + all.Events[0].ID + "/retry-now"} {
		status, body := e.do("POST", path, url.Values{})
		check("POST "+path, status, body)
	}

	// The walk met every kind of time, the payload both ways, and the lists.
	for _, k := range []string{"events.created_at", "events.updated_at", "events.payload", "events.payload_base64", "events.metadata",
		"history", "history.started_at", "history.duration", "duplicates",
		"started_at", "last_seen", "heartbeat_interval", "consumers.last_message_at", "last_message_at", "processes",
		"claimed_at", "finished_at", "expires_at", "created_at",
		"next_attempt_at", "event.created_at", "event.payload",
		"since", "until", "bucket", "timeline.start", "top_errors.last_at", "slowest_handlers.avg",
		"retention.oldest_at", "retention.report.last_run", "retention.report.policy.max_age", "retention.report.last_result.duration",
		"stats.by_status", "by_status", "by_topic", "errors", "commands", "dry_run", "error", "param"} {
		if !seen[k] {
			t.Errorf("no answer had %q", k)
		}
	}
}

// samePayload: the same bytes, or (a payload written as JSON, whose whitespace and
// escapes the encoding may change) the same JSON value.
func samePayload(got, want []byte) bool {
	if bytes.Equal(got, want) {
		return true
	}
	var g, w any
	return json.Unmarshal(got, &g) == nil && json.Unmarshal(want, &w) == nil && reflect.DeepEqual(g, w)
}
