package admin

import (
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-eventbus/eventbus/control"
)

//go:embed assets
var assets embed.FS

// Options configures the console. The zero value serves everything to everyone with
// write access: set Authorize (or mount the handler behind your own authentication)
// before exposing it.
type Options struct {
	// Authorize decides each request's access; nil grants AccessWrite to every request.
	Authorize func(*http.Request) Access
	// ReadOnly caps every request at AccessRead: no buttons, 403 on every POST.
	ReadOnly bool
	// RefreshIntervals are the live-refresh choices of the pages; default 2s, 5s, 10s,
	// 30s. The first is preselected.
	RefreshIntervals []time.Duration
	// Title is shown in the header and the page titles; default "eventbus".
	Title string
	// BasePath is the URL path the handler is mounted at, with a trailing slash, e.g.
	// "/events/". Empty: read from each request (the part of the request URI that
	// http.StripPrefix removed). Set it when a proxy strips the prefix before the
	// request arrives.
	BasePath string
	// MaxBulk refuses a bulk action that matches more events; default 10000.
	MaxBulk int
	// TraceURL links an event's trace id to a tracing UI: "{trace_id}" in it is
	// replaced by the id, e.g. "http://jaeger:16686/trace/{trace_id}". Empty: the
	// trace id links only to the events of that trace.
	TraceURL string
	// Logger receives errors of the store and of actions; nil discards them.
	Logger *slog.Logger
}

// Limits on request input. Longer values are refused with 400 naming the parameter.
const (
	// MaxParamLen is the longest accepted value of one query or form parameter.
	MaxParamLen = 1024
	// MaxListLimit caps the page size of the events list.
	MaxListLimit = 1000
	// maxBody bounds a request body.
	maxBody = 64 << 10
)

type handler struct {
	insp  *control.Inspector
	opts  Options
	log   *slog.Logger
	mux   *http.ServeMux
	csrf  *http.CrossOriginProtection
	pages *pages
}

// New returns the console over insp. The handler's routes are relative to its root:
// mount it with http.StripPrefix (see the package documentation). It is safe for
// concurrent use.
func New(insp *control.Inspector, opts Options) http.Handler {
	if len(opts.RefreshIntervals) == 0 {
		opts.RefreshIntervals = []time.Duration{2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second}
	}
	if opts.Title == "" {
		opts.Title = "eventbus"
	}
	if opts.MaxBulk <= 0 {
		opts.MaxBulk = 10000
	}
	if opts.BasePath != "" && !strings.HasSuffix(opts.BasePath, "/") {
		opts.BasePath += "/"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{insp: insp, opts: opts, log: log, mux: http.NewServeMux(), csrf: http.NewCrossOriginProtection()}
	h.csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "", "cross-origin request refused: state-changing requests must come from the console's own origin")
	}))
	h.pages = loadPages()
	h.routes()
	return h
}

func (h *handler) routes() {
	static, _ := fs.Sub(assets, "assets/static")
	fileServer := http.FileServerFS(static)
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(time.Hour, noListing(fileServer))))
	h.mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, info(r).base+"static/favicon.svg", http.StatusMovedPermanently)
	})

	// Pages.
	h.mux.HandleFunc("GET /{$}", h.overviewPage)
	h.mux.HandleFunc("GET /events", h.eventsPage)
	h.mux.HandleFunc("GET /events/{id}", h.eventPage)
	h.mux.HandleFunc("GET /consumers", h.managerPage)
	h.mux.HandleFunc("GET /schedule", h.schedulePage) // page_schedule.go

	// JSON API.
	h.mux.HandleFunc("GET /api/events", h.apiEvents)
	h.mux.HandleFunc("GET /api/events/{id}", h.apiEvent)
	h.mux.HandleFunc("POST /api/events/{id}/{action}", h.apiEventAction)
	h.mux.HandleFunc("POST /api/events/{action}", h.apiBulk)
	h.mux.HandleFunc("GET /api/stats", h.apiStats)
	h.mux.HandleFunc("GET /api/overview", h.apiOverview)
	h.mux.HandleFunc("GET /api/processes", h.apiProcesses)
	h.mux.HandleFunc("GET /api/consumers", h.apiConsumers)
	h.mux.HandleFunc("POST /api/consumers/{name}/{action}", h.apiConsumerAction)
	h.mux.HandleFunc("GET /api/commands", h.apiCommands)
	h.mux.HandleFunc("GET /api/commands/{id}", h.apiCommand)
	h.mux.HandleFunc("GET /api/scheduled", h.apiScheduled)                      // api_scheduled.go
	h.mux.HandleFunc("POST /api/scheduled/{id}/{action}", h.apiScheduledAction) // api_scheduled.go
	h.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if allow := h.allowed(r); allow != "" {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "", r.Method+" is not a method of "+r.URL.Path+" (allowed: "+allow+")")
			return
		}
		writeError(w, http.StatusNotFound, "", "no such API endpoint: "+r.Method+" "+r.URL.Path+" (see docs/api.md)")
	})
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := h.allowed(r); allow != "" {
			w.Header().Set("Allow", allow)
			h.renderError(w, r, http.StatusMethodNotAllowed, r.Method+" is not a method of this page (allowed: "+allow+").")
			return
		}
		h.renderError(w, r, http.StatusNotFound, "No such page.")
	})
}

// ServeHTTP authorizes the request, checks its origin when it changes state, and routes it.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/") {
		r2 := *r
		u := *r.URL
		u.Path = "/" + u.Path
		if u.RawPath != "" {
			u.RawPath = "/" + u.RawPath
		}
		r2.URL = &u
		r = &r2
	}
	setSecurityHeaders(w)
	access := h.access(r)
	if access == AccessNone {
		w.Header().Set("WWW-Authenticate", `Basic realm="eventbus console", charset="UTF-8"`)
		writeError(w, http.StatusUnauthorized, "", "authentication required")
		return
	}
	if !isSafeMethod(r.Method) {
		if err := h.csrf.Check(r); err != nil {
			writeError(w, http.StatusForbidden, "", "cross-origin request refused: state-changing requests must come from the console's own origin")
			return
		}
		if access < AccessWrite {
			msg := "read-only access: this action needs write access"
			if h.opts.ReadOnly {
				msg = "the console is read-only: actions are disabled"
			}
			writeError(w, http.StatusForbidden, "", msg)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	}
	ctx := withRequestInfo(r.Context(), requestInfo{access: access, base: h.basePath(r)})
	h.mux.ServeHTTP(w, r.WithContext(ctx))
}

func isSafeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// basePath is the path the handler is mounted at, ending in "/".
func (h *handler) basePath(r *http.Request) string {
	if h.opts.BasePath != "" {
		return h.opts.BasePath
	}
	orig := r.RequestURI
	if i := strings.IndexAny(orig, "?#"); i >= 0 {
		orig = orig[:i]
	}
	if strings.Contains(orig, "://") { // absolute-form request URI
		if i := strings.Index(orig[strings.Index(orig, "://")+3:], "/"); i >= 0 {
			orig = orig[strings.Index(orig, "://")+3+i:]
		}
	}
	rel := r.URL.EscapedPath()
	base := "/"
	if strings.HasSuffix(orig, rel) {
		base = orig[:len(orig)-len(rel)]
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	if !strings.HasPrefix(base, "/") || strings.HasPrefix(base, "//") {
		base = "/"
	}
	return base
}

func setSecurityHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
}

func cacheFor(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age="+itoa(int(d/time.Second)))
		next.ServeHTTP(w, r)
	})
}

// allowed lists the methods that have a route for r's path, other than the
// catch-all ones: the Allow header of a 405. Empty: no route has the path.
func (h *handler) allowed(r *http.Request) string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pat := h.mux.Handler(r2); pat != "" && pat != "/" && pat != "/api/" {
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
	}
	return strings.Join(allow, ", ")
}

// noListing answers 404 for a directory of the static files instead of listing it.
func noListing(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
