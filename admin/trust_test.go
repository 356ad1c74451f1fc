package admin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/admin"
	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

// doBody sends a request with a raw body and content type.
func (e *env) doBody(method, path, contentType, body string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// A malformed query never widens a filter: it is refused with 400 naming the
// parameter, in the API and on the pages.
func TestMalformedQueryRefused(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.publish(1)
	for _, c := range []struct{ path, param string }{
		{"api/stats?handler=nobody%zz", "handler"},
		{"api/events?status=succeeded%zz", "status"},
		{"api/events?q=100%", "q"},
		{"api/events?status=succeeded;x=1", "status"},
		{"api/events?topic=orders&ha%zzndler=x", "ha%zzndler"},
		{"api/overview?since=1h&handler=%", "handler"},
		{"api/processes?x=%", "x"},
	} {
		code, body := e.do("GET", c.path, nil)
		if code != http.StatusBadRequest || !strings.Contains(body, `"param": "`+c.param+`"`) {
			t.Errorf("GET %s: %d %s", c.path, code, body)
		}
	}
	for _, path := range []string{"events?q=100%", "events?status=succeeded;x=1", "?handler=nobody%zz", "events/01ARZ3NDEKTSV4RRFFQ69G5FAV?x=%zz", "consumers?a=%"} {
		code, body := e.do("GET", path, nil)
		if code != http.StatusBadRequest || !strings.Contains(body, "error-box") {
			t.Errorf("GET %s: %d", path, code)
		}
	}
	code, body := e.do("GET", "events?q=100%", nil)
	if !strings.Contains(body, "q: malformed percent-encoding") {
		t.Errorf("page does not name the parameter: %d %s", code, body)
	}
	// A form body is parsed as strictly as a query.
	code, body = e.doBody("POST", "api/events/replay?dry_run=1", "application/x-www-form-urlencoded", "q=100%")
	if code != http.StatusBadRequest || !strings.Contains(body, `"param": "q"`) {
		t.Errorf("malformed form body: %d %s", code, body)
	}
}

// A bulk POST reads a JSON body as its parameters, and refuses a body it cannot read
// (415) rather than acting on an empty filter.
func TestBulkBodies(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.publish(2)
	code, body := e.doBody("POST", "api/events/replay?dry_run=1", "application/json", `{"q":"no-such-text"}`)
	if r := decode[control.BulkResult](t, body); code != 200 || r.Matched != 0 || r.Rows != 0 {
		t.Fatalf("JSON filter ignored: %d %s", code, body)
	}
	code, body = e.doBody("POST", "api/events/retry?dry_run=1", "application/json; charset=utf-8", `{"status":["poisoned"],"handler":"shipping"}`)
	if r := decode[control.BulkResult](t, body); code != 200 || r.Matched != 2 {
		t.Fatalf("JSON filter: %d %s", code, body)
	}
	code, body = e.doBody("POST", "api/events/retry?dry_run=1", "application/json", `{"status":{"a":1}}`)
	if code != http.StatusBadRequest || !strings.Contains(body, `"param": "status"`) {
		t.Fatalf("JSON object value: %d %s", code, body)
	}
	code, body = e.doBody("POST", "api/events/retry?dry_run=1", "application/json", `{"status":`)
	if code != http.StatusBadRequest || !strings.Contains(body, `"param": "body"`) {
		t.Fatalf("malformed JSON: %d %s", code, body)
	}
	code, body = e.doBody("POST", "api/events/retry?dry_run=1", "application/json", `{"bogus":"x"}`)
	if code != http.StatusBadRequest || !strings.Contains(body, `"param": "bogus"`) {
		t.Fatalf("unknown JSON parameter: %d %s", code, body)
	}
	for _, ct := range []string{"text/plain", "", "multipart/form-data; boundary=x"} {
		code, body = e.doBody("POST", "api/events/replay", ct, `q=no-such-text`)
		if code != http.StatusUnsupportedMediaType {
			t.Errorf("body of type %q: %d %s", ct, code, body)
		}
	}
	if cs, _ := e.insp.Commands(t.Context(), "", 100); len(cs) != 0 {
		t.Fatalf("a refused body enqueued %d commands", len(cs))
	}
	// A POST without a body takes its parameters from the query.
	code, body = e.doBody("POST", "api/events/replay?dry_run=1&direction=produced", "", "")
	if r := decode[control.BulkResult](t, body); code != 200 || r.Matched != 2 {
		t.Fatalf("query parameters: %d %s", code, body)
	}
}

// dry_run is read once for a bulk action, by a filter or on a selection alike: 1 and
// true only count, 0 and false act, and any other value — strconv.ParseBool's other
// spellings (t, TRUE, F, False…) included — is refused before anything is done.
func TestBulkDryRun(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.publish(1)
	p, err := e.insp.Events(t.Context(), modelevent.Filter{Handler: "shipping"}, modelevent.ListOptions{Limit: 1})
	if err != nil || len(p.Events) != 1 {
		t.Fatal(err, p)
	}
	for _, form := range []url.Values{{"handler": {"shipping"}}, {"id": {p.Events[0].ID}}} {
		for _, dry := range []string{"1", "true"} {
			code, body := e.do("POST", "api/events/retry?dry_run="+dry, form)
			if r := decode[struct {
				DryRun bool `json:"dry_run"`
				control.BulkResult
			}](t, body); code != 200 || !r.DryRun || r.Matched != 1 || r.Enqueued != 0 {
				t.Fatalf("%v dry_run=%s: %d %s", form, dry, code, body)
			}
		}
		for _, bad := range []string{"yes", "2", "on", "t", "T", "TRUE", "True", "f", "F", "FALSE", "False"} {
			code, body := e.do("POST", "api/events/retry?dry_run="+bad, form)
			if code != http.StatusBadRequest || !strings.Contains(body, `"param": "dry_run"`) {
				t.Fatalf("%v dry_run=%s: %d %s", form, bad, code, body)
			}
		}
		if e.commands() != 0 {
			t.Fatalf("%v: a dry run or a refused one enqueued a command", form)
		}
	}
	for i, dry := range []string{"0", "false"} {
		code, body := e.do("POST", "api/events/retry?dry_run="+dry, url.Values{"id": {p.Events[0].ID}})
		if r := decode[control.BulkResult](t, body); code != 200 || r.Enqueued != 1 || e.commands() != i+1 {
			t.Fatalf("dry_run=%s: %d %s", dry, code, body)
		}
	}
}

// A bulk replay counts and publishes messages: a filter on one message matches its
// produced row and its two consumed rows, and replays that message once.
func TestBulkReplayPerMessage(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.publish(2)
	p, err := e.insp.Events(t.Context(), modelevent.Filter{Direction: modelevent.Produced}, modelevent.ListOptions{Limit: 1})
	if err != nil || len(p.Events) != 1 {
		t.Fatal(err, p)
	}
	msg := p.Events[0].MessageUUID
	// Every row of both messages: two messages.
	code, body := e.do("POST", "api/events/replay?dry_run=1", url.Values{})
	if r := decode[control.BulkResult](t, body); code != 200 || r.Matched != 2 || r.Rows != 6 {
		t.Fatalf("dry run of all: %d %s", code, body)
	}
	code, body = e.do("POST", "api/events/replay?dry_run=1", url.Values{"message_uuid": {msg}})
	if r := decode[control.BulkResult](t, body); code != 200 || r.Matched != 1 || r.Rows != 3 {
		t.Fatalf("dry run: %d %s", code, body)
	}
	_, page := e.do("GET", "events?message_uuid="+msg, nil)
	if !strings.Contains(page, "Replay 1 message</button>") {
		t.Errorf("events page does not offer to replay 1 message")
	}
	code, body = e.do("POST", "api/events/replay", url.Values{"message_uuid": {msg}})
	r := decode[control.BulkResult](t, body)
	if code != 200 || r.Matched != 1 || r.Enqueued != 1 {
		t.Fatalf("replay: %d %s", code, body)
	}
	cs, err := e.insp.Commands(t.Context(), "", 100)
	if err != nil || len(cs) != 1 {
		t.Fatalf("%d commands for one message (%v)", len(cs), err)
	}
}

// The overview of a very long range picks a coarser bucket instead of failing.
func TestOverviewLongRange(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.publish(1)
	code, body := e.do("GET", "api/overview?since=1970-01-01", nil)
	if code != 200 {
		t.Fatalf("api/overview since 1970: %d %s", code, body)
	}
	ov := decode[struct {
		Bucket time.Duration `json:"bucket"`
		Stats  modelevent.Stats
	}](t, body)
	if span := time.Since(time.Unix(0, 0)); ov.Bucket < 7*24*time.Hour || span/ov.Bucket > 100 || ov.Stats.Total != 3 {
		t.Fatalf("bucket %v, %d rows", ov.Bucket, ov.Stats.Total)
	}
	if code, _ := e.do("GET", "?since=1970-01-01", nil); code != 200 {
		t.Fatalf("overview page since 1970: %d", code)
	}
	if code, _ := e.do("GET", "?since=1970-01-01&until=2026-01-01", nil); code != 200 {
		t.Fatalf("overview page 1970 to 2026: %d", code)
	}
}

// Without JavaScript a form post is not acted on at once: the console answers with
// a confirmation page that posts the same fields again with confirm=yes.
func TestFormPostConfirmation(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.publish(1)
	for _, c := range []struct {
		path     string
		form     url.Values
		question string
	}{
		{"api/events/retry", url.Values{"status": {"poisoned"}, "next": {"events?status=poisoned"}}, "Retry 1 consumed event matching the filter"},
		{"api/events/replay", url.Values{"next": {"events"}}, "Replay 1 message (3 rows)"},
		{"api/consumers/billing/stop", url.Values{"next": {"consumers"}}, "Stop consumer billing in every process?"},
	} {
		code, body := e.do("POST", c.path, c.form)
		if code != 200 || !strings.Contains(body, c.question) || !strings.Contains(body, `name="confirm" value="yes"`) {
			t.Fatalf("POST %s without confirm: %d %s", c.path, code, body)
		}
		for k, v := range c.form {
			if !strings.Contains(body, `name="`+k+`" value="`+strings.ReplaceAll(v[0], `"`, "&#34;")+`"`) {
				t.Errorf("confirmation page of %s loses field %s", c.path, k)
			}
		}
	}
	if cs, _ := e.insp.Commands(t.Context(), "", 100); len(cs) != 0 {
		t.Fatalf("unconfirmed posts enqueued %d commands", len(cs))
	}
	ps, _ := e.insp.Processes(t.Context())
	if ps[0].Consumers[0].Desired == control.Stopped || ps[0].Consumers[1].Desired == control.Stopped {
		t.Fatal("an unconfirmed stop was applied")
	}
	code, _ := e.do("POST", "api/events/retry", url.Values{"status": {"poisoned"}, "next": {"events"}, "confirm": {"yes"}})
	if cs, _ := e.insp.Commands(t.Context(), "", 100); code != http.StatusSeeOther || len(cs) != 1 {
		t.Fatalf("confirmed post: %d, %d commands", code, len(cs))
	}
}

// A poisoned event can be deleted (resolved) with its attempts; other events cannot.
func TestDeletePoisoned(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.publish(1)
	p, _ := e.insp.Events(t.Context(), modelevent.Filter{Statuses: []modelevent.Status{modelevent.StatusPoisoned}}, modelevent.ListOptions{})
	ok, _ := e.insp.Events(t.Context(), modelevent.Filter{Handler: "billing"}, modelevent.ListOptions{})
	if len(p.Events) != 1 || len(ok.Events) != 1 {
		t.Fatalf("rows: %d poisoned, %d billing", len(p.Events), len(ok.Events))
	}
	code, body := e.do("POST", "api/events/"+ok.Events[0].ID+"/delete", url.Values{})
	if code != http.StatusConflict || !strings.Contains(body, "only a poisoned or failed") {
		t.Fatalf("delete of a succeeded event: %d %s", code, body)
	}
	// Without JavaScript it asks first.
	code, body = e.do("POST", "api/events/"+p.Events[0].ID+"/delete", url.Values{"next": {"events/" + p.Events[0].ID}})
	if code != 200 || !strings.Contains(body, "Delete the poisoned event") {
		t.Fatalf("unconfirmed delete: %d %s", code, body)
	}
	if _, err := e.insp.Event(t.Context(), p.Events[0].ID); err != nil {
		t.Fatalf("deleted before confirmation: %v", err)
	}
	code, body = e.do("POST", "api/events/"+p.Events[0].ID+"/delete", url.Values{})
	if code != 200 || !strings.Contains(body, `"deleted": "`+p.Events[0].ID+`"`) {
		t.Fatalf("delete: %d %s", code, body)
	}
	if code, _ := e.do("GET", "api/events/"+p.Events[0].ID, nil); code != http.StatusNotFound {
		t.Fatalf("deleted event: %d", code)
	}
	var n int
	if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM eventbus_attempts WHERE message_uuid = ? AND handler = 'shipping'`, p.Events[0].MessageUUID).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d attempts left (%v)", n, err)
	}
	if st, _ := e.insp.Stats(t.Context(), modelevent.Filter{}); st.Total != 2 {
		t.Fatalf("%d rows left, want 2 (produced, billing)", st.Total)
	}
}

// A wrong method is 405 with Allow; static/ lists nothing; the favicon is served.
func TestMethodsAndStatic(t *testing.T) {
	e := newEnv(t, admin.Options{})
	for _, c := range []struct{ method, path, allow string }{
		{"DELETE", "api/events", "GET, HEAD"},
		{"PUT", "api/events/01ARZ3NDEKTSV4RRFFQ69G5FAV/retry", "POST"},
		{"POST", "events", "GET, HEAD"},
		{"POST", "api/stats", "GET, HEAD"},
	} {
		req, _ := http.NewRequest(c.method, e.url+c.path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow %q", c.method, c.path, res.StatusCode, res.Header.Get("Allow"))
		}
	}
	if code, _ := e.do("GET", "api/nothing", nil); code != http.StatusNotFound {
		t.Errorf("unknown endpoint: %d", code)
	}
	if code, body := e.do("GET", "static/", nil); code != http.StatusNotFound || strings.Contains(body, "app.js") {
		t.Errorf("static/ listing: %d %s", code, body)
	}
	if code, body := e.do("GET", "static/favicon.svg", nil); code != 200 || !strings.Contains(body, "<svg") {
		t.Errorf("favicon: %d", code)
	}
	if _, body := e.do("GET", "events", nil); !strings.Contains(body, `rel="icon" href="/events/static/favicon.svg"`) {
		t.Errorf("pages do not link the favicon")
	}
}

// No JSON answer shows 0001-01-01 for a time that is not set.
func TestNoZeroTimes(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.publish(1)
	p, _ := e.insp.Events(t.Context(), modelevent.Filter{Statuses: []modelevent.Status{modelevent.StatusPoisoned}}, modelevent.ListOptions{})
	e.do("POST", "api/events/"+p.Events[0].ID+"/replay", url.Values{}) // a command
	for _, path := range []string{"api/events", "api/events/" + p.Events[0].ID, "api/processes", "api/consumers", "api/commands", "api/overview", "api/stats"} {
		if _, body := e.do("GET", path, nil); strings.Contains(body, "0001-01-01") {
			t.Errorf("GET %s shows a zero time:\n%s", path, body)
		}
	}
	// A command nobody claimed yet, a consumer without messages.
	for _, v := range []any{control.Command{ID: "x", CreatedAt: time.Now(), ExpiresAt: time.Now()}, control.ConsumerStatus{Name: "c"}, control.ConsumerView{Name: "c"}} {
		if b, _ := json.Marshal(v); strings.Contains(string(b), "0001-01-01") {
			t.Errorf("%T: %s", v, b)
		}
	}
}

// TestMessageUUIDForEventID: an event path given a message UUID says which kind of id
// it wants and which it got.
func TestMessageUUIDForEventID(t *testing.T) {
	e := newEnv(t, admin.Options{})
	code, body := e.do("GET", "api/events/01a23124-4ce8-70dd-9cb5-aa68bef9e70b", nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "got a message UUID") || !strings.Contains(body, "26-character ULID") {
		t.Fatalf("GET api/events/<uuid>: %d %s", code, body)
	}
}
