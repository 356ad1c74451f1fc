package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-eventbus/eventbus/admin"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/control"
)

// Environment variables of the console's built-in basic auth.
const (
	adminUserEnv     = "EVENTBUS_ADMIN_USER"
	adminPasswordEnv = "EVENTBUS_ADMIN_PASSWORD"
	// traceURLEnv is the default of serve --trace-url.
	traceURLEnv = "EVENTBUS_TRACE_URL"
)

// checkTraceURL refuses a --trace-url that is not an http(s) URL with {trace_id}.
func checkTraceURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(strings.ReplaceAll(s, "{trace_id}", "0"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !strings.Contains(s, "{trace_id}") {
		return usageError{fmt.Sprintf("serve: --trace-url %q: want an http(s) URL with {trace_id}, e.g. http://127.0.0.1:16686/trace/{trace_id}", s)}
	}
	return nil
}

// runServe serves the console over the configured store, standalone: actions become
// commands and desired states that the live bus processes on that store apply.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "serve [--config FILE] [--addr HOST:PORT] [--read-only] [--insecure-no-auth] [--trace-url URL]", stdout)
	configPath := configFlag(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	readOnly := fs.Bool("read-only", false, "disable every action: no buttons, 403 on POST")
	noAuth := fs.Bool("insecure-no-auth", false, "allow serving on a non-loopback address without "+adminUserEnv+"/"+adminPasswordEnv)
	traceURL := fs.String("trace-url", os.Getenv(traceURLEnv), "link trace ids to a tracing UI; {trace_id} is replaced, e.g. http://127.0.0.1:16686/trace/{trace_id} (default $"+traceURLEnv+")")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkTraceURL(*traceURL); err != nil {
		return err
	}
	opts := admin.Options{ReadOnly: *readOnly, TraceURL: *traceURL, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	user, pass := os.Getenv(adminUserEnv), os.Getenv(adminPasswordEnv)
	switch {
	case user != "" && pass != "":
		opts.Authorize = admin.BasicAuth(user, pass)
	case user != "" || pass != "":
		return usageError{fmt.Sprintf("serve: set both %s and %s, or neither", adminUserEnv, adminPasswordEnv)}
	case !isLoopback(*addr) && !*noAuth:
		return usageError{fmt.Sprintf("serve: refusing to serve %s without authentication: set %s and %s, or pass --insecure-no-auth", *addr, adminUserEnv, adminPasswordEnv)}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	ctl := control.NewStore(store)
	insp := control.NewInspector(store, ctl, control.InspectorOptions{})
	metrics, err := controlMetricsRoute(ctx, ctl, cfg.MetricsPollInterval, stderr)
	if err != nil {
		return err
	}
	url, stop, err := startConsole(ctx, insp, *addr, opts, stderr, append(healthRoutes(bus.StoreHealthHandler(store)), metrics)...)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "eventbus console: %s (store %s; Ctrl-C to stop)\n", url, cfg.Store.Driver)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return stop(sctx)
}

// route is a handler served beside the console, outside its authorizer (probes).
type route struct {
	pattern string
	handler http.Handler
}

// healthRoutes serves h's /healthz and /readyz at the root, for Kubernetes probes.
func healthRoutes(h http.Handler) []route {
	return []route{{"GET /healthz", h}, {"GET /readyz", h}}
}

// startConsole serves the console for insp at addr under /events/, and routes, and
// returns its URL and a function that shuts the server down.
func startConsole(ctx context.Context, insp *control.Inspector, addr string, opts admin.Options, stderr io.Writer, routes ...route) (url string, stop func(context.Context) error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("console: listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/events/", http.StripPrefix("/events", admin.New(insp, opts)))
	mux.Handle("/{$}", http.RedirectHandler("/events/", http.StatusFound))
	for _, r := range routes {
		mux.Handle(r.pattern, r.handler)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          nil,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(stderr, "console:", err)
		}
	}()
	host := ln.Addr().String()
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		host = net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
	}
	return "http://" + host + "/events/", srv.Shutdown, nil
}

// isLoopback reports whether addr listens on the loopback interface only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
