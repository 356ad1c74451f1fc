package bus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/internal/tcpproxy"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// proxiedPostgres returns the DSN of a fresh PostgreSQL schema reached through a TCP
// proxy, and the proxy, which cuts the store off and restores it. It skips (or fails,
// under EVENTBUS_REQUIRE_SERVICES=1) when PostgreSQL is unreachable.
func proxiedPostgres(t *testing.T) (string, *tcpproxy.Proxy) {
	t.Helper()
	dsn := testenv.FreshPostgres(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse postgres dsn: %v", err)
	}
	proxy, err := tcpproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	u.Host = proxy.Addr()
	return u.String(), proxy
}

// since returns how long after start the first record whose message is msg was logged;
// -1 when there is none.
func since(t *testing.T, l *testenv.Logs, msg string, start time.Time) time.Duration {
	t.Helper()
	recs := l.Records(t, msg)
	if len(recs) == 0 {
		return -1
	}
	s, _ := recs[0][slog.TimeKey].(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return -1
	}
	return at.Sub(start).Round(time.Millisecond)
}

// deliveryLog records every delivery of a consumer's messages: when the router handed
// it over, when it ended and with what error (nil: acked; otherwise nacked or poisoned).
type deliveryLog struct {
	mu   sync.Mutex
	list []deliveryRecord
}

type deliveryRecord struct {
	uuid       string
	start, end time.Time
	err        error
}

// middleware is a router-level middleware (outside the bus's own chain) that logs the
// deliveries of handler.
func (d *deliveryLog) middleware(handler string) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			if message.HandlerNameFromCtx(msg.Context()) != handler {
				return h(msg)
			}
			start := time.Now()
			out, err := h(msg)
			d.mu.Lock()
			d.list = append(d.list, deliveryRecord{msg.UUID, start, time.Now(), err})
			d.mu.Unlock()
			return out, err
		}
	}
}

func (d *deliveryLog) snapshot() []deliveryRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]deliveryRecord(nil), d.list...)
}

// waitFor polls cond until it holds or timeout passes, then fails with what last said.
func waitFor(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, what := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// statusCounts counts the rows of direction and handler ("" for any) by status, and in all.
func statusCounts(b *bus.Bus, direction modelevent.Direction, handler string) (map[modelevent.Status]int64, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := b.Store().Stats(ctx, modelevent.Filter{Direction: direction, Handler: handler})
	return st.ByStatus, st.Total, err
}

// TestStoreOutageNoRedeliveryStorm cuts the PostgreSQL store off for 2s while a stream
// of messages is published and consumed on the memory backend in durable mode. While
// the store is away the consumer does not run its handler, and each message in flight
// is nacked at most about once per write_timeout (no redelivery storm); once the store
// is back every message ends recorded: one produced row published and one consumed row
// succeeded, each message handled at least once. The outage is logged once at WARN
// when it starts and once at INFO, with its duration, when it ends.
func TestStoreOutageNoRedeliveryStorm(t *testing.T) {
	const (
		n            = 300
		topic        = "outage.orders"
		handler      = "counter"
		writeTimeout = 500 * time.Millisecond
		cutFor       = 2 * time.Second
	)
	dsn, proxy := proxiedPostgres(t)
	logs := &testenv.Logs{}
	b := newTestBus(t, bus.Config{
		Store: bus.StoreConfig{Driver: "postgres", DSN: dsn},
		Record: bus.RecordConfig{
			Mode: middleware.RecordDurable,
			// Publish hands produced rows to the recorder's queue and returns: the stream
			// goes on through the outage and its rows are stored when the store is back.
			// (Durable produced rows would make each Publish wait write_timeout and return
			// "published, but not recorded" while the store is away.)
			ProducedMode: middleware.RecordBuffered,
			WriteTimeout: writeTimeout,
		},
		Retry:           middleware.RetryConfig{MaxRetries: -1},
		ShutdownTimeout: 5 * time.Second,
		Logger:          logs.Logger(slog.LevelInfo),
	})

	var (
		runsMu sync.Mutex
		runs   = map[string][]time.Time{} // handler runs per message
	)
	if err := b.Handle(handler, topic, func(ctx context.Context, msg *message.Message) error {
		runsMu.Lock()
		runs[msg.UUID] = append(runs[msg.UUID], time.Now())
		runsMu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	deliveries := &deliveryLog{}
	b.Router().AddMiddleware(deliveries.middleware(handler))
	runBus(t, b)

	uuids := make([]string, n)
	var pubErrs []error
	third := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := range n {
			msg := bus.NewMessage([]byte(fmt.Sprintf(`{"n":%d}`, i)))
			uuids[i] = msg.UUID
			if err := b.Publish(context.Background(), topic, msg); err != nil {
				pubErrs = append(pubErrs, err)
			}
			if i == n/3 {
				close(third)
			}
			time.Sleep(10 * time.Millisecond) // ~100 messages/s: the stream spans the cut
		}
	}()

	<-third
	cutAt := time.Now()
	proxy.Cut()
	time.Sleep(cutFor) // the outage itself, not a wait for a result
	restoreAt := time.Now()
	proxy.Restore()
	<-published
	for _, err := range pubErrs {
		t.Errorf("publish: %v", err)
	}

	// Nothing lost: every message ends with its produced row published and its consumed
	// row succeeded.
	waitFor(t, 10*time.Second, func() (bool, string) {
		consumed, total, err := statusCounts(b, modelevent.Consumed, handler)
		if err != nil {
			return false, fmt.Sprintf("stats: %v", err)
		}
		if consumed[modelevent.StatusSucceeded] != n || total != n {
			return false, fmt.Sprintf("want %d consumed rows succeeded, have %d rows: %v", n, total, consumed)
		}
		produced, total, err := statusCounts(b, modelevent.Produced, "")
		if err != nil {
			return false, fmt.Sprintf("stats: %v", err)
		}
		if produced[modelevent.StatusPublished] != n || total != n {
			return false, fmt.Sprintf("want %d produced rows published, have %d rows: %v", n, total, produced)
		}
		return true, ""
	})
	rows := waitRows(t, b, modelevent.Filter{Direction: modelevent.Consumed, Handler: handler}, n)
	recorded := map[string]bool{}
	for _, r := range rows {
		recorded[r.MessageUUID] = true
	}

	runsMu.Lock()
	var runsDuringCut, handledTwice int
	for _, id := range uuids {
		if len(runs[id]) == 0 {
			t.Errorf("message %s was never handled", id)
		}
		if !recorded[id] {
			t.Errorf("message %s has no consumed row", id)
		}
		if len(runs[id]) > 1 {
			handledTwice++
		}
		for _, at := range runs[id] {
			if at.After(cutAt) && at.Before(restoreAt) {
				runsDuringCut++
			}
		}
	}
	runsMu.Unlock()

	// During the cut: deliveries that ended (acked or nacked) while the store was away.
	var nacks, acks int
	perMessage := map[string]int{}
	for _, d := range deliveries.snapshot() {
		if d.end.Before(cutAt) || !d.end.Before(restoreAt) {
			continue
		}
		perMessage[d.uuid]++
		if d.err == nil {
			acks++
			continue
		}
		nacks++
		if !errors.Is(d.err, middleware.ErrNotRecorded) {
			t.Errorf("delivery of %s during the outage failed with %v, want an error wrapping ErrNotRecorded", d.uuid, d.err)
		}
	}
	maxPerMessage := 0
	for _, k := range perMessage {
		maxPerMessage = max(maxPerMessage, k)
	}
	cut := restoreAt.Sub(cutAt)
	t.Logf("cut %v: %d handler runs, %d deliveries acked, %d nacked (%.1f nacks/s over %d messages in flight, at most %d deliveries per message); %d messages handled more than once",
		cut.Round(time.Millisecond), runsDuringCut, acks, nacks, float64(nacks)/cut.Seconds(), len(perMessage), maxPerMessage, handledTwice)

	// The memory backend (GoChannel) hands every published message over on a goroutine
	// of its own and the router handles them concurrently, so all the messages
	// published during the cut (~140) are in flight at once: the bound on nacks is per
	// message, about one per write_timeout, not per consumer. Without Recorder.
	// WaitHealthy every delivery during the cut runs the handler (~470 runs measured);
	// with it, only the handlers that started before the writer saw the store fail run.
	if runsDuringCut > 10 {
		t.Errorf("%d handler runs while the store was cut off, want at most 10", runsDuringCut)
	}
	if limit := int(cut/writeTimeout) + 2; maxPerMessage > limit {
		t.Errorf("a message was delivered %d times during a %v outage, want at most %d (about one per write_timeout %v)",
			maxPerMessage, cut.Round(time.Millisecond), limit, writeTimeout)
	}
	if len(perMessage) == 0 {
		t.Error("no delivery ended during the cut: the outage did not meet the stream")
	}

	// The outage: one WARN when it starts, one INFO with its duration when it ends.
	down := logs.Records(t, "eventbus: store unavailable; recording waits and retries with backoff")
	up := logs.Records(t, "eventbus: store available again")
	if len(down) != 1 || down[0][slog.LevelKey] != "WARN" {
		t.Errorf("outage start logged %d times (%v), want once at WARN", len(down), down)
	}
	if len(up) != 1 || up[0][slog.LevelKey] != "INFO" {
		t.Fatalf("outage end logged %d times (%v), want once at INFO", len(up), up)
	}
	ns, ok := up[0]["outage"].(float64)
	if !ok {
		t.Fatalf("outage end logged without its duration: %v", up[0])
	}
	// From the first failed write (soon after the cut) to the first write after the
	// restore (at most one backoff, 5s, later).
	if d := time.Duration(ns); d < cut/2 || d > cut+6*time.Second {
		t.Errorf("outage logged as %v, want about the %v cut (plus at most one backoff)", d, cut.Round(time.Millisecond))
	}
	t.Logf("outage logged: %v at %v, then %v at %v (outage %v)", down[0][slog.MessageKey], down[0][slog.LevelKey],
		up[0][slog.MessageKey], up[0][slog.LevelKey], time.Duration(ns))
}

// TestCloseWithStoreDownReturnsByDeadline closes a buffered bus while its PostgreSQL
// store is cut off and the recorder's queue is full, with publishers blocked on it (the
// default write_timeout, 10s, is far beyond the close deadline): Close returns by
// shutdown_timeout (plus a small margin) with an error counting the rows not stored,
// which are logged, and the blocked publishers return too.
//
// With a consumer whose handler is blocked on the full queue as well, the router waits
// for that handler until the deadline; the recorder's flush then gets the tenth of
// shutdown_timeout bus.Close grants it at least.
func TestCloseWithStoreDownReturnsByDeadline(t *testing.T) {
	const shutdownTimeout = time.Second
	t.Run("publishers", func(t *testing.T) {
		closeWithStoreDown(t, false, shutdownTimeout, shutdownTimeout+750*time.Millisecond)
	})
	t.Run("publishers and a consumer", func(t *testing.T) {
		closeWithStoreDown(t, true, shutdownTimeout, shutdownTimeout+shutdownTimeout/10+750*time.Millisecond)
	})
}

func closeWithStoreDown(t *testing.T, withConsumer bool, shutdownTimeout, bound time.Duration) {
	const (
		topic      = "outage.close"
		publishers = 4
	)
	dsn, proxy := proxiedPostgres(t)
	logs := &testenv.Logs{}
	b := newTestBus(t, bus.Config{
		Store: bus.StoreConfig{Driver: "postgres", DSN: dsn},
		// A small queue, so that publishers block on it while the store is away.
		Record:          bus.RecordConfig{Mode: middleware.RecordBuffered, BatchSize: 8, QueueSize: 16},
		Retry:           middleware.RetryConfig{MaxRetries: -1},
		ShutdownTimeout: shutdownTimeout,
		Logger:          logs.Logger(slog.LevelInfo),
	})
	if withConsumer {
		if err := b.Handle("sink", topic, func(ctx context.Context, msg *message.Message) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	runBus(t, b)

	const before = 20
	for range before {
		if err := b.Publish(context.Background(), topic, bus.NewMessage([]byte(`{}`))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, func() (bool, string) {
		_, total, err := statusCounts(b, "", "")
		if err != nil {
			return false, fmt.Sprintf("stats: %v", err)
		}
		want := int64(before)
		if withConsumer {
			want *= 2
		}
		return total == want, fmt.Sprintf("want %d rows stored before the cut, have %d", want, total)
	})

	proxy.Cut()
	var (
		wg       sync.WaitGroup
		attempts atomic.Int64
		returned = make(chan time.Time, publishers)
	)
	for range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { returned <- time.Now() }()
			for range 50 {
				attempts.Add(1)
				if err := b.Publish(context.Background(), topic, bus.NewMessage([]byte(`{}`))); err != nil {
					return // closed, or not recorded
				}
			}
		}()
	}
	// Wait until the queue is full: the publishers stop making progress.
	waitFor(t, 5*time.Second, func() (bool, string) {
		a := attempts.Load()
		time.Sleep(200 * time.Millisecond)
		return a > 16 && attempts.Load() == a, fmt.Sprintf("publishers still progressing (%d publishes)", attempts.Load())
	})

	start := time.Now()
	err := b.Close()
	took := time.Since(start)
	t.Logf("Close took %v (router closed after %v): %v", took.Round(time.Millisecond), since(t, logs, "Router closed", start), err)
	if took > bound {
		t.Errorf("Close took %v with the store down and shutdown_timeout %v, want at most %v", took.Round(time.Millisecond), shutdownTimeout, bound)
	}
	if err == nil || !strings.Contains(err.Error(), "changes not stored") {
		t.Errorf("Close = %v, want an error counting the changes not stored", err)
	}
	if lost := logs.Records(t, "eventbus: rows dropped: the store did not take them before the close deadline"); len(lost) == 0 {
		t.Error("the dropped rows were not logged")
	}

	// No publisher stays blocked on the recorder after Close.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("publishers still blocked 2s after Close returned")
	}
	close(returned)
	var last time.Time
	for at := range returned {
		if at.After(last) {
			last = at
		}
	}
	t.Logf("last publisher returned %v after Close started", last.Sub(start).Round(time.Millisecond))
}
