package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/go-eventbus/eventbus/backends/memory"
	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

var (
	_ Pinger = (*memory.Backend)(nil)
	_ Pinger = (*modelevent.SQLStore)(nil)
)

// Pinger is implemented by backends and stores that can tell whether their broker or
// database is reachable now (like Backlogger, a capability the bus asks for with a type
// assertion). Every backend of this module and modelevent.SQLStore implement it.
type Pinger interface {
	// Ping returns nil when the connection is up and the server answers; otherwise an
	// error saying what is wrong, prefixed with the backend's name. It returns by ctx's
	// deadline at the latest and is safe for concurrent use.
	Ping(ctx context.Context) error
}

// The Status of a HealthReport.
const (
	HealthOK          = "ok"
	HealthUnavailable = "unavailable"
)

// The keys of HealthReport.Checks.
const (
	// CheckBus is "ok" until the bus is closed, then "closed".
	CheckBus = "bus"
	// CheckStore is the ModelEvent store: a ping, and whether the recorder's latest
	// write was taken.
	CheckStore = "store"
	// CheckBackend is the broker connection (the backend's Ping).
	CheckBackend = "backend"
	// CheckConsumers lists the consumers that should run and do not.
	CheckConsumers = "consumers"
)

// CheckNotChecked is the value of a check that could not be made (a backend or store
// without Ping, or any check of a closed bus). It does not fail the report by itself.
const CheckNotChecked = "not checked"

// DefaultHealthTimeout bounds the pings of a readiness check made by a health handler,
// unless the request's context ends sooner. It stays under Kubernetes' default probe
// timeout (1s).
const DefaultHealthTimeout = 800 * time.Millisecond

// maxCheckLen caps the length of one check's value: errors of drivers can be long.
const maxCheckLen = 300

// HealthReport is the outcome of a liveness or readiness check, and the JSON body of
// the health endpoints:
//
//	{"status":"ok","checks":{"backend":"ok","bus":"ok","consumers":"ok","store":"ok"}}
//
// Status is HealthOK when no check failed, else HealthUnavailable. Each check is "ok",
// CheckNotChecked, or a short text of what is wrong (which fails the report).
type HealthReport struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// OK reports whether Status is HealthOK.
func (r HealthReport) OK() bool { return r.Status == HealthOK }

// newReport sets Status from checks.
func newReport(checks map[string]string) HealthReport {
	status := HealthOK
	for k, v := range checks {
		if v != HealthOK && v != CheckNotChecked {
			status = HealthUnavailable
		}
		if len(v) > maxCheckLen {
			checks[k] = v[:maxCheckLen] + "…"
		}
	}
	return HealthReport{Status: status, Checks: checks}
}

// Live is the liveness check: bus "ok" until the bus is closed. It does no I/O.
func (b *Bus) Live() HealthReport {
	state := HealthOK
	if b.isClosed() {
		state = "closed"
	}
	return newReport(map[string]string{CheckBus: state})
}

// Ready is the readiness check: the bus is not closed; the store answers a ping and
// the recorder's latest write was taken (false while the store fails); the backend
// answers its Ping; every consumer that should run (not stopped by its desired state)
// is subscribed and running. A consumer that is pending (before Run has subscribed it)
// fails the check, one stopped by StopConsumer or the console does not. The pings run
// concurrently within ctx: give it a deadline.
func (b *Bus) Ready(ctx context.Context) HealthReport {
	if b.isClosed() {
		return newReport(map[string]string{CheckBus: "closed", CheckStore: CheckNotChecked,
			CheckBackend: CheckNotChecked, CheckConsumers: CheckNotChecked})
	}
	checks := map[string]string{CheckBus: HealthOK, CheckConsumers: b.consumersCheck()}
	var (
		wg               sync.WaitGroup
		backend, storeOK string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		backend = pingCheck(ctx, b.backend)
	}()
	storeOK = pingCheck(ctx, b.store)
	if storeOK != CheckNotChecked && storeOK != HealthOK {
		storeOK = "ping: " + storeOK
	} else if !b.rec.Healthy() {
		storeOK = "writes failing: the recorder is retrying them"
	}
	wg.Wait()
	checks[CheckStore], checks[CheckBackend] = storeOK, backend
	return newReport(checks)
}

// pingCheck pings v if it is a Pinger.
func pingCheck(ctx context.Context, v any) string {
	p, ok := v.(Pinger)
	if !ok {
		return CheckNotChecked
	}
	if err := p.Ping(ctx); err != nil {
		return err.Error()
	}
	return HealthOK
}

// consumersCheck lists the consumers that should run and are not running.
func (b *Bus) consumersCheck() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var bad []string
	for _, name := range b.order {
		c := b.consumers[name]
		if !c.wantRunning {
			continue
		}
		if c.state != control.Running {
			bad = append(bad, fmt.Sprintf("%s: %s", name, c.state))
			continue
		}
		// state is running only after the router started the handler (and made its
		// stopped channel).
		if h := c.handler; h != nil {
			select {
			case <-h.Stopped():
				bad = append(bad, name+": subscription ended")
			default:
			}
		}
	}
	if len(bad) == 0 {
		return HealthOK
	}
	return strings.Join(bad, ", ")
}

// HealthHandler returns the handler of the bus's health endpoints, for Kubernetes
// probes. It answers GET and HEAD of two paths, wherever it is mounted (it looks at the
// last element of the path):
//
//	.../healthz  Live: 200 while the bus is not closed, else 503
//	.../readyz   Ready: 200 when every check passes, else 503 naming what is wrong
//
// with a HealthReport as JSON. The readiness pings are bounded by DefaultHealthTimeout.
// Mount it without authentication for the kubelet, e.g.
//
//	mux.Handle("GET /healthz", h)
//	mux.Handle("GET /readyz", h)
//
// or mux.Handle("/health/", h) for /health/healthz and /health/readyz. Check values
// carry error texts of the store and broker clients (hosts, ports, user names, never
// passwords).
func (b *Bus) HealthHandler() http.Handler {
	return healthHandler{
		live:  func(context.Context) HealthReport { return b.Live() },
		ready: b.Ready,
	}
}

// StoreHealthHandler is HealthHandler for a process that serves a store without a bus
// (eventbus serve): /healthz is always 200 with no checks (the process answers),
// /readyz checks the store: a ping if it is a Pinger.
func StoreHealthHandler(store modelevent.Store) http.Handler {
	return healthHandler{
		live: func(context.Context) HealthReport { return newReport(map[string]string{}) },
		ready: func(ctx context.Context) HealthReport {
			check := pingCheck(ctx, store)
			if check != HealthOK && check != CheckNotChecked {
				check = "ping: " + check
			}
			return newReport(map[string]string{CheckStore: check})
		},
	}
}

type healthHandler struct {
	live, ready func(context.Context) HealthReport
}

func (h healthHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var check func(context.Context) HealthReport
	switch path.Base(r.URL.Path) {
	case "healthz":
		check = h.live
	case "readyz":
		check = h.ready
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), DefaultHealthTimeout)
	defer cancel()
	rep := check(ctx)
	body, err := json.Marshal(rep)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !rep.OK() {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write(append(body, '\n'))
}
