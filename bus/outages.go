package bus

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// episode logs the failures of one dependency once per outage: a warning when the
// first failure comes, nothing for the ones that follow, and, when it works again, one
// line with how long the outage lasted and how many failures it had.
type episode struct {
	what string // "broker", "control plane store"

	mu       sync.Mutex
	since    time.Time // zero: no outage
	failures int
}

// fail records a failure; the first of an outage is logged.
func (e *episode) fail(log *slog.Logger, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failures++
	if !e.since.IsZero() {
		return
	}
	e.since = time.Now()
	log.Warn("eventbus: "+e.what+" unavailable", "error", err)
}

// ok records a success; one that ends an outage is logged with its duration.
func (e *episode) ok(log *slog.Logger) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.since.IsZero() {
		return
	}
	log.Info("eventbus: "+e.what+" available again", "outage", time.Since(e.since).Round(time.Millisecond), "failures", e.failures)
	e.since, e.failures = time.Time{}, 0
}

// watchBroker pings the backend, when it can be pinged, every heartbeat interval until
// ctx ends, so that a broker outage is logged once when it starts and once when it ends
// (the backends' clients reconnect by themselves; a consumer's messages wait in the
// broker meanwhile).
func (b *Bus) watchBroker(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	p, ok := b.backend.(Pinger)
	if !ok {
		return
	}
	every := b.cfg.Process.HeartbeatInterval
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, every)
		err := p.Ping(pctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			b.brokerOutage.fail(b.log, err)
		default:
			b.brokerOutage.ok(b.log)
		}
	}
}
