package admin

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/internal/jsonfmt"
	"github.com/go-eventbus/eventbus/modelevent"
)

// pages holds one parsed template set per page.
type pages struct {
	sets map[string]*template.Template
}

var pageNames = []string{"overview", "events", "event", "manager", "schedule", "error", "confirm"}

func loadPages() *pages {
	p := &pages{sets: map[string]*template.Template{}}
	for _, name := range pageNames {
		p.sets[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(assets,
			"assets/templates/layout.html", "assets/templates/"+name+".html"))
	}
	return p
}

// pageData is what every page template gets.
type pageData struct {
	Site     string
	Title    string
	Base     string
	Nav      string
	CanWrite bool
	ReadOnly bool
	Refresh  []refreshChoice
	Now      time.Time
	Data     any
	Error    string
}

type refreshChoice struct {
	Seconds float64
	Label   string
}

func (h *handler) page(r *http.Request, nav, title string, data any) pageData {
	ri := info(r)
	pd := pageData{Site: h.opts.Title, Title: title, Base: ri.base, Nav: nav, CanWrite: ri.access >= AccessWrite,
		ReadOnly: h.opts.ReadOnly, Now: time.Now().UTC(), Data: data}
	for _, d := range h.opts.RefreshIntervals {
		pd.Refresh = append(pd.Refresh, refreshChoice{Seconds: d.Seconds(), Label: d.String()})
	}
	return pd
}

// render writes a page, buffered so a template error becomes a clean 500.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name string, pd pageData) {
	var buf bytes.Buffer
	if err := h.pages.sets[name].ExecuteTemplate(&buf, "layout", pd); err != nil {
		h.log.Error("eventbus console: render page", "page", name, "error", err)
		http.Error(w, "eventbus console: render page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// renderError shows msg on the error page.
func (h *handler) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	pd := h.page(r, "", http.StatusText(status), nil)
	pd.Error = msg
	h.render(w, r, status, "error", pd)
}

// pageFail shows err on the error page with the status the API would use.
func (h *handler) pageFail(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	if status == http.StatusInternalServerError {
		h.log.Error("eventbus console: page failed", "path", r.URL.Path, "error", err)
	}
	h.renderError(w, r, status, err.Error())
}

// claimHolder is the process id of a schedule entry's claim ("<process id>/<token>").
func claimHolder(claimedBy string) string {
	if i := strings.LastIndexByte(claimedBy, '/'); i > 0 {
		return claimedBy[:i]
	}
	return claimedBy
}

// iso is a time as the JSON API writes it (jsonfmt: RFC 3339 UTC, microseconds), for
// the pages' tooltips; "" when it is not set.
func iso(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return jsonfmt.Format(t)
}

// errorStatusesParam is control's error statuses as a status parameter: the events a
// top error of the overview links to.
var errorStatusesParam = statusParam(control.ErrorStatuses())

// statusParam is ss as the value of a status parameter (comma-separated).
func statusParam(ss []modelevent.Status) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = string(s)
	}
	return strings.Join(names, ",")
}

var funcs = template.FuncMap{
	"ago":       ago,
	"utc":       utc,
	"iso":       iso,
	"holder":    claimHolder,
	"dur":       fmtDuration,
	"failed":    func(s modelevent.Status) bool { return failedStatus(s) },
	"short":     func(s string, n int) string { return truncate(s, n) },
	"firstLine": firstLine,
	"query":     encodeQuery,
	"pathesc":   url.PathEscape,
	"errquery":  errorQuery,
	"div":       func(a, b int) int { return a / b },
	"failedq":   func() string { return errorStatusesParam },
	"backlog": func(n int64) string {
		if n < 0 {
			return "—"
		}
		return itoa(int(n))
	},
	"pct": func(a, b int64) string {
		if b == 0 {
			return "0%"
		}
		return itoa(int(a*100/b)) + "%"
	},
}

func utc(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return itoa(int(d/time.Second)) + "s ago"
	case d < time.Hour:
		return itoa(int(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return itoa(int(d/time.Hour)) + "h ago"
	}
	return itoa(int(d/(24*time.Hour))) + "d ago"
}

func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return itoa(int(d/time.Microsecond)) + "µs"
	case d < time.Second:
		return strings.TrimSuffix(strings.TrimRight(strings.TrimRight(
			formatFloat(float64(d)/float64(time.Millisecond), 1), "0"), "."), ".") + "ms"
	}
	return d.Round(10 * time.Millisecond).String()
}

func formatFloat(f float64, prec int) string {
	s := itoa(int(f))
	frac := f - float64(int(f))
	if prec > 0 {
		s += "." + itoa(int(frac*10))
	}
	return s
}

func truncate(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// encodeQuery encodes key/value pairs (and url.Values) into a query string: a pair
// with an empty value removes the key.
func encodeQuery(v url.Values, kv ...string) string {
	out := cloneValues(v)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			out.Del(kv[i])
		} else {
			out.Set(kv[i], kv[i+1])
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "?" + out.Encode()
}
