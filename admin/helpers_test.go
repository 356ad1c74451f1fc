package admin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/admin"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// env is a real bus (memory backend, SQLite store in a temp dir, fast heartbeats) with
// consumers "billing" (succeeds), "shipping" (fails while failing is set) on topic
// "orders", and the console over a standalone Inspector on the same store, as
// `eventbus serve` runs it, mounted under /events/.
type env struct {
	t       *testing.T
	bus     *bus.Bus
	store   *modelevent.SQLStore
	insp    *control.Inspector
	srv     *httptest.Server
	url     string // the console's root, ending in /
	failing atomic.Bool
	billed  atomic.Int64
}

func newEnv(t *testing.T, opts admin.Options) *env {
	t.Helper()
	return newEnvOn(t, opts, "sqlite", "file:"+filepath.Join(t.TempDir(), "events.db"))
}

// newEnvOn is newEnv over the store driver and dsn given (a fresh database).
func newEnvOn(t *testing.T, opts admin.Options, driver, dsn string) *env {
	t.Helper()
	e := &env{t: t}
	e.failing.Store(true)
	b, err := bus.New(context.Background(), bus.Config{
		Store:   bus.StoreConfig{Driver: driver, DSN: dsn},
		Retry:   middleware.RetryConfig{MaxRetries: -1},
		Process: bus.ProcessConfig{Name: "worker-1", HeartbeatInterval: 100 * time.Millisecond, CommandPollInterval: 20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	e.bus = b
	must(t, b.Handle("billing", "orders", func(ctx context.Context, msg *message.Message) error {
		e.billed.Add(1)
		return nil
	}))
	must(t, b.Handle("shipping", "orders", func(ctx context.Context, msg *message.Message) error {
		if e.failing.Load() {
			return errors.New("carrier API timeout <script>alert(1)</script>")
		}
		return nil
	}))
	go func() { _ = b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case <-time.After(10 * time.Second):
		t.Fatal("bus did not start")
	}
	e.store, err = modelevent.Open(context.Background(), driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	e.insp = control.NewInspector(e.store, control.NewStore(e.store), control.InspectorOptions{CommandTTL: time.Minute})
	mux := http.NewServeMux()
	mux.Handle("/events/", http.StripPrefix("/events", admin.New(e.insp, opts)))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	e.url = e.srv.URL + "/events/"
	e.eventually("the process registered", func() bool {
		ps, _ := e.insp.Processes(context.Background())
		return len(ps) == 1 && len(ps[0].Consumers) == 2
	})
	return e
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// publish publishes n orders and waits until each has its three rows written.
func (e *env) publish(n int) { e.publishRows(n, 3) }

// publishRows publishes n orders and waits until each has rows rows written.
func (e *env) publishRows(n, rows int) {
	e.t.Helper()
	ctx := context.Background()
	before, _ := e.insp.Count(ctx, modelevent.Filter{})
	for i := 0; i < n; i++ {
		msg := message.NewMessage("", []byte(fmt.Sprintf(`{"order":%d,"note":"<img src=x onerror=alert(1)>"}`, i)))
		msg.Metadata.Set("correlation_id", "flow-"+fmt.Sprint(i%2))
		must(e.t, e.bus.Publish(ctx, "orders", msg))
	}
	e.eventually("rows written", func() bool {
		c, _ := e.insp.Count(ctx, modelevent.Filter{Statuses: []modelevent.Status{modelevent.StatusPublished, modelevent.StatusSucceeded, modelevent.StatusPoisoned}})
		return c >= before+int64(rows*n)
	})
}

// do sends a request to the console (path relative to its root) and returns the
// status and body.
func (e *env) do(method, path string, form url.Values, header ...string) (int, string) {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
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
