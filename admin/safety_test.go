package admin_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-eventbus/eventbus/admin"
	"github.com/go-eventbus/eventbus/modelevent"
)

func TestBasicAuth(t *testing.T) {
	e := newEnv(t, admin.Options{Authorize: admin.BasicAuthAccounts(
		admin.Account{User: "ops", Password: "s3cret", Access: admin.AccessWrite},
		admin.Account{User: "viewer", Password: "look", Access: admin.AccessRead},
	)})
	e.publish(1)
	code, _ := e.do("GET", "api/events", nil)
	if code != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d", code)
	}
	req, _ := http.NewRequest("GET", e.url+"api/events", nil)
	req.SetBasicAuth("ops", "wrong")
	res, _ := http.DefaultClient.Do(req)
	res.Body.Close()
	if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("wrong password: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	basic := func(u, p string) string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(u, p)
		return r.Header.Get("Authorization")
	}
	if code, _ := e.do("GET", "events", nil, "Authorization", basic("viewer", "look")); code != 200 {
		t.Fatalf("viewer read: %d", code)
	}
	code, body := e.do("POST", "api/consumers/billing/stop", url.Values{}, "Authorization", basic("viewer", "look"))
	if code != http.StatusForbidden || !strings.Contains(body, "write access") {
		t.Fatalf("viewer write: %d %s", code, body)
	}
	// A reader sees no buttons.
	_, page := e.do("GET", "consumers", nil, "Authorization", basic("viewer", "look"))
	_, ev := e.do("GET", "events", nil, "Authorization", basic("viewer", "look"))
	if strings.Contains(page, "<button class=\"stop") || strings.Contains(ev, "bulk-retry") {
		t.Fatal("a reader sees action buttons")
	}
	_, page = e.do("GET", "consumers", nil, "Authorization", basic("ops", "s3cret"))
	if !strings.Contains(page, `class="stop"`) {
		t.Fatal("a writer sees no stop button")
	}
	if code, _ := e.do("POST", "api/consumers/billing/stop", url.Values{}, "Authorization", basic("ops", "s3cret")); code != 200 {
		t.Fatalf("writer: %d", code)
	}
}

func TestReadOnly(t *testing.T) {
	e := newEnv(t, admin.Options{ReadOnly: true})
	e.publish(1)
	p, _ := e.insp.Events(t.Context(), modelevent.Filter{}, modelevent.ListOptions{})
	for _, path := range []string{"api/events/" + p.Events[0].ID + "/replay", "api/events/retry", "api/consumers/billing/stop"} {
		code, body := e.do("POST", path, url.Values{})
		if code != http.StatusForbidden || !strings.Contains(body, "read-only") {
			t.Fatalf("POST %s: %d %s", path, code, body)
		}
	}
	for _, path := range []string{"", "events", "events/" + p.Events[0].ID, "consumers"} {
		code, body := e.do("GET", path, nil)
		if code != 200 || strings.Contains(body, "<button id=\"retry") || strings.Contains(body, "class=\"act\"") {
			t.Fatalf("GET %s: %d, or buttons shown", path, code)
		}
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, admin.Options{})
	for _, h := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Origin", "https://evil.example"},
	} {
		code, body := e.do("POST", "api/consumers/billing/stop", url.Values{}, h...)
		if code != http.StatusForbidden || !strings.Contains(body, "cross-origin") {
			t.Fatalf("%v: %d %s", h, code, body)
		}
	}
	// Same origin passes.
	code, body := e.do("POST", "api/consumers/billing/stop", url.Values{}, "Sec-Fetch-Site", "same-origin", "Origin", e.srv.URL)
	if code != 200 {
		t.Fatalf("same origin: %d %s", code, body)
	}
	// A cross-site GET reads (safe method).
	if code, _ := e.do("GET", "api/stats", nil, "Sec-Fetch-Site", "cross-site"); code != 200 {
		t.Fatalf("cross-site GET: %d", code)
	}
}

func TestHostileInput(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.publish(1)
	long := strings.Repeat("x", admin.MaxParamLen+1)
	for _, c := range []struct{ method, path, param string }{
		{"GET", "api/events/not-an-id", "id"},
		{"GET", "api/events/01ARZ3NDEKTSV4RRFFQ69G5FA%3Cs", "id"},
		{"GET", "api/events?status=weird", "status"},
		{"GET", "api/events?direction=sideways", "direction"},
		{"GET", "api/events?q=" + long, "q"},
		{"GET", "api/events?topic=" + long, "topic"},
		{"GET", "api/events?limit=-3", "limit"},
		{"GET", "api/events?limit=lots", "limit"},
		{"GET", "api/events?cursor=%27%3B--", "cursor"},
		{"GET", "api/events?since=yesterday", "since"},
		{"GET", "api/events?since=2h&until=3h", "until"},
		{"GET", "api/events?bogus=1", "bogus"},
		{"GET", "api/events?q=%ff%fe", "q"},
		{"GET", "api/commands/xyz", "id"},
		{"GET", "api/commands?status=done", "status"},
		{"GET", "api/overview?bucket=1ms", "bucket"},
		{"POST", "api/events/01ARZ3NDEKTSV4RRFFQ69G5FAV/explode", "action"},
		{"POST", "api/events/explode", "action"},
		{"POST", "api/consumers/billing/pause", "action"},
		{"POST", "api/consumers/billing/stop?process=" + long, "process"},
		{"POST", "api/events/retry?direction=produced", "direction"},
	} {
		var form url.Values
		if c.method == "POST" {
			form = url.Values{}
		}
		code, body := e.do(c.method, c.path, form)
		if code != http.StatusBadRequest || !strings.Contains(body, `"param": "`+c.param+`"`) {
			t.Errorf("%s %s: %d %s", c.method, c.path[:min(len(c.path), 60)], code, body)
		}
	}
	if code, body := e.do("GET", "api/events/01ARZ3NDEKTSV4RRFFQ69G5FAV", nil); code != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("unknown id: %d %s", code, body)
	}
	if code, body := e.do("GET", "api/nothing", nil); code != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("unknown endpoint: %d %s", code, body)
	}
	// The list is capped at MaxListLimit.
	if code, _ := e.do("GET", "api/events?limit=100000", nil); code != 200 {
		t.Errorf("huge limit: %d", code)
	}
	// A huge body is refused.
	code, body := e.do("POST", "api/events/retry", url.Values{"q": {strings.Repeat("y", 100<<10)}})
	if code != http.StatusBadRequest || !strings.Contains(body, `"param": "body"`) {
		t.Errorf("huge body: %d %s", code, body[:min(len(body), 200)])
	}
	// Script in payloads, errors and filters is escaped in pages.
	p, _ := e.insp.Events(t.Context(), modelevent.Filter{Handler: "shipping"}, modelevent.ListOptions{})
	for _, path := range []string{"events", "events/" + p.Events[0].ID, "consumers", "", "events?q=%3Cscript%3Ealert(2)%3C/script%3E", "events?topic=%22%3E%3Cb%3E"} {
		code, body := e.do("GET", path, nil)
		if code != 200 {
			t.Errorf("GET %s: %d", path, code)
		}
		for _, bad := range []string{"<script>alert", "<img src=x", `"><b>`} {
			if strings.Contains(body, bad) {
				t.Errorf("GET %s: unescaped %q in the page", path, bad)
			}
		}
	}
	// The page of a bad filter is a 400 page naming the parameter.
	if code, body := e.do("GET", "events?status=%3Cscript%3E", nil); code != 400 || !strings.Contains(body, "status: unknown status") || strings.Contains(body, "<script>") {
		t.Errorf("bad filter page: %d", code)
	}
	// Security headers.
	req, _ := http.NewRequest("GET", e.url+"events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers: %v", res.Header)
	}
}

func TestFormPostWithoutJavaScript(t *testing.T) {
	e := newEnv(t, admin.Options{})
	code, _ := e.do("POST", "api/consumers/billing/stop", url.Values{"next": {"consumers"}, "confirm": {"yes"}})
	if code != http.StatusSeeOther {
		t.Fatalf("form post: %d", code)
	}
	req, _ := http.NewRequest("POST", e.url+"api/consumers/billing/start", strings.NewReader("confirm=yes&next=%2F%2Fevil.example%2F"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); loc != "/events/" {
		t.Fatalf("open redirect: Location %q", loc)
	}
}

func TestMountPrefixes(t *testing.T) {
	e := newEnv(t, admin.Options{})
	h := admin.New(e.insp, admin.Options{})
	for _, prefix := range []string{"", "/ops/bus", "/x"} {
		mux := http.NewServeMux()
		mux.Handle(prefix+"/", http.StripPrefix(prefix, h))
		for _, path := range []string{"/", "/events", "/consumers", "/api/stats", "/static/app.css"} {
			req, _ := http.NewRequest("GET", prefix+path, nil)
			req.RequestURI = prefix + path
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Fatalf("%s%s: %d", prefix, path, rec.Code)
			}
			if strings.HasSuffix(path, "events") && !strings.Contains(rec.Body.String(), `href="`+prefix+`/static/app.css"`) {
				t.Fatalf("%s%s: links do not carry the prefix", prefix, path)
			}
		}
	}
}
