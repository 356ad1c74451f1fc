package tracing_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/go-eventbus/eventbus/admin"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
	"github.com/go-eventbus/eventbus/tracing"
)

// provider is an SDK tracer provider whose ended spans a test reads.
type provider struct {
	*sdktrace.TracerProvider
	rec *tracetest.SpanRecorder
}

func newProvider(t testing.TB) provider {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return provider{tp, rec}
}

// span waits for the ended span called name and returns it.
func (p provider) span(t testing.TB, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	return p.spanWhere(t, name, func(sdktrace.ReadOnlySpan) bool { return true })
}

func (p provider) spanWhere(t testing.TB, name string, ok func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, s := range p.rec.Ended() {
			if s.Name() == name && ok(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no span %q; ended: %s", name, names(p.rec.Ended()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// spans returns the ended spans called name.
func (p provider) spans(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range p.rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func names(spans []sdktrace.ReadOnlySpan) string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return strings.Join(out, ", ")
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	m := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value.String()
	}
	return m
}

// wantAttrs fails t unless span s has every attribute of want.
func wantAttrs(t testing.TB, s sdktrace.ReadOnlySpan, want map[string]string) {
	t.Helper()
	got := attrs(s)
	for k, v := range want {
		if got[attribute.Key(k)] != v {
			t.Errorf("span %q: %s = %q, want %q (all: %v)", s.Name(), k, got[attribute.Key(k)], v, got)
		}
	}
}

func newBus(t testing.TB, cfg bus.Config) *bus.Bus {
	t.Helper()
	if cfg.Store.Driver == "" && cfg.EventStore == nil {
		cfg.Store = bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "events.db")}
	}
	if cfg.Retry == (middleware.RetryConfig{}) {
		cfg.Retry = middleware.RetryConfig{MaxRetries: 2, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond}
	}
	if cfg.PoisonTopic == "" {
		cfg.PoisonTopic = bustest.Topic(t, "poison")
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	b, err := bus.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("bus.New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func run(t testing.TB, b *bus.Bus) {
	t.Helper()
	go func() { _ = b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case <-time.After(60 * time.Second):
		t.Fatal("bus did not start")
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// row waits for the consumed row of handler for message uuid to reach status.
func row(t testing.TB, store modelevent.Store, handler, uuid string, status modelevent.Status) modelevent.ModelEvent {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := store.List(context.Background(), modelevent.Filter{MessageUUID: uuid, Handler: handler, Direction: modelevent.Consumed}, modelevent.ListOptions{})
		must(t, err)
		if len(p.Events) == 1 && p.Events[0].Status == status {
			return p.Events[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumed row of %s for %s did not become %s: %+v", handler, uuid, status, p.Events)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCarrierRoundTrip(t *testing.T) {
	p := newProvider(t)
	ctx, span := p.Tracer("test").Start(context.Background(), "root")
	defer span.End()
	md := message.Metadata{}
	tracing.Inject(ctx, md)
	if got := middleware.TraceIDOf(md); got != span.SpanContext().TraceID().String() {
		t.Fatalf("TraceIDOf(injected) = %q, want %s (metadata %v)", got, span.SpanContext().TraceID(), md)
	}
	sc := trace.SpanContextFromContext(tracing.Extract(context.Background(), md))
	if !sc.IsRemote() || sc.TraceID() != span.SpanContext().TraceID() || sc.SpanID() != span.SpanContext().SpanID() {
		t.Fatalf("extracted %v, want the span context of %v", sc, span.SpanContext())
	}
	if ctx2 := tracing.Extract(context.Background(), message.Metadata{"traceparent": "garbage"}); trace.SpanContextFromContext(ctx2).IsValid() {
		t.Fatal("a malformed traceparent was extracted")
	}
	if keys := tracing.MetadataCarrier(md).Keys(); len(keys) != 1 || keys[0] != tracing.TraceparentKey {
		t.Fatalf("keys %v", keys)
	}
}

func TestSystem(t *testing.T) {
	for backend, want := range map[string]string{"amqp": "rabbitmq", "kafka": "kafka", "nats": "nats", "memory": "memory", "sql": "sql", "": "memory"} {
		if got := tracing.System(backend); got != want {
			t.Errorf("System(%q) = %q, want %q", backend, got, want)
		}
	}
}

// TestMemory: the publish, every attempt and the handler's own publish are one trace
// on the memory backend; the handler's context carries the attempt's span; rows and
// the console show the trace id.
func TestMemory(t *testing.T) {
	p := newProvider(t)
	b := newBus(t, bus.Config{TracerProvider: p})
	topic, next := bustest.Topic(t, "orders"), bustest.Topic(t, "shipments")
	var mu sync.Mutex
	var attempts int
	var handlerSpans []trace.SpanContext
	must(t, b.Handle("billing", topic, func(ctx context.Context, msg *message.Message) error {
		mu.Lock()
		attempts++
		n := attempts
		handlerSpans = append(handlerSpans, trace.SpanContextFromContext(ctx))
		mu.Unlock()
		if n == 1 {
			return errors.New("card declined")
		}
		// The application's own span and publish join the trace.
		ctx, span := p.Tracer("app").Start(ctx, "charge")
		defer span.End()
		return b.Publish(ctx, next, bus.NewMessage([]byte(`{"shipment":1}`)))
	}))
	must(t, b.Handle("shipping", next, func(ctx context.Context, msg *message.Message) error { return nil }))
	run(t, b)

	ctx, root := p.Tracer("app").Start(context.Background(), "checkout")
	msg := bus.NewMessage([]byte(`{"order":1}`))
	must(t, b.Publish(ctx, topic, msg))
	root.End()
	ev := row(t, b.Store(), "billing", msg.UUID, modelevent.StatusSucceeded)
	row(t, b.Store(), "shipping", "", modelevent.StatusSucceeded) // any message

	traceID := root.SpanContext().TraceID()
	pub := p.span(t, "publish "+topic)
	if pub.Parent().SpanID() != root.SpanContext().SpanID() || pub.SpanKind() != trace.SpanKindProducer {
		t.Fatalf("publish span: parent %v kind %v, want child of the caller's span, producer", pub.Parent(), pub.SpanKind())
	}
	wantAttrs(t, pub, map[string]string{"messaging.system": "memory", "messaging.destination.name": topic,
		"messaging.operation.type": "send", "messaging.operation.name": "publish", "messaging.message.id": msg.UUID})

	proc := p.spans("process " + topic)
	if len(proc) != 2 {
		t.Fatalf("%d process spans for 2 attempts: %s", len(proc), names(p.rec.Ended()))
	}
	for i, s := range proc {
		if s.SpanContext().TraceID() != traceID || s.Parent().SpanID() != pub.SpanContext().SpanID() || s.SpanKind() != trace.SpanKindConsumer {
			t.Fatalf("process span %d: trace %s parent %s kind %v, want a consumer child of the publish span %s", i,
				s.SpanContext().TraceID(), s.Parent().SpanID(), s.SpanKind(), pub.SpanContext().SpanID())
		}
		wantAttrs(t, s, map[string]string{"messaging.system": "memory", "messaging.destination.name": topic,
			"messaging.operation.type": "process", "messaging.message.id": msg.UUID, "messaging.consumer.group.name": "billing"})
		if mu.Lock(); handlerSpans[i].SpanID() != s.SpanContext().SpanID() {
			t.Errorf("attempt %d: the handler's context carries span %s, want its process span %s", i, handlerSpans[i].SpanID(), s.SpanContext().SpanID())
		}
		mu.Unlock()
	}
	if proc[0].Status().Code != codes.Error || attrs(proc[0])["error.type"] == "" || proc[1].Status().Code == codes.Error {
		t.Errorf("statuses %v %v (error.type %q): want the failed attempt marked", proc[0].Status(), proc[1].Status(), attrs(proc[0])["error.type"])
	}
	charge := p.span(t, "charge")
	inner := p.span(t, "publish "+next)
	shipping := p.span(t, "process "+next)
	if charge.Parent().SpanID() != proc[1].SpanContext().SpanID() || inner.Parent().SpanID() != charge.SpanContext().SpanID() ||
		shipping.Parent().SpanID() != inner.SpanContext().SpanID() || shipping.SpanContext().TraceID() != traceID {
		t.Fatalf("the handler's span and publish are not in the trace: charge parent %s, publish parent %s, process parent %s",
			charge.Parent().SpanID(), inner.Parent().SpanID(), shipping.Parent().SpanID())
	}

	if ev.TraceID != traceID.String() {
		t.Fatalf("consumed row trace id %q, want %s", ev.TraceID, traceID)
	}
	prod, err := b.Store().List(context.Background(), modelevent.Filter{MessageUUID: msg.UUID, Direction: modelevent.Produced}, modelevent.ListOptions{})
	must(t, err)
	if len(prod.Events) != 1 || prod.Events[0].TraceID != traceID.String() {
		t.Fatalf("produced row: %+v, want trace id %s", prod.Events, traceID)
	}
	all, err := b.Store().List(context.Background(), modelevent.Filter{TraceID: traceID.String()}, modelevent.ListOptions{})
	must(t, err)
	if len(all.Events) != 4 { // produced and consumed, of both messages
		t.Fatalf("%d rows of the trace, want 4", len(all.Events))
	}
	checkConsole(t, b, ev)
}

// checkConsole: the event page shows the trace id, links it to the tracing UI, and the
// list filters by it.
func checkConsole(t testing.TB, b *bus.Bus, ev modelevent.ModelEvent) {
	t.Helper()
	h := admin.New(b.Inspector(), admin.Options{TraceURL: "http://jaeger.example:16686/trace/{trace_id}"})
	body := get(t, h, "/events/"+ev.ID, http.StatusOK)
	link := `href="http://jaeger.example:16686/trace/` + ev.TraceID + `"`
	if !strings.Contains(body, link) || !strings.Contains(body, `id="trace-link"`) {
		t.Fatalf("event page has no trace link %s:\n%s", link, body)
	}
	if !strings.Contains(body, "events?trace_id="+ev.TraceID) {
		t.Fatalf("event page does not link the events of trace %s", ev.TraceID)
	}
	body = get(t, h, "/api/events?trace_id="+ev.TraceID, http.StatusOK)
	if !strings.Contains(body, ev.ID) {
		t.Fatalf("api/events?trace_id does not list the event: %s", body)
	}
	body = get(t, h, "/api/events?trace_id="+strings.Repeat("0", 31)+"1", http.StatusOK)
	if strings.Contains(body, ev.ID) {
		t.Fatalf("api/events of another trace lists the event: %s", body)
	}
	get(t, h, "/api/events?trace_id=nothex", http.StatusBadRequest)
	body = get(t, h, "/events?trace_id="+strings.ToUpper(ev.TraceID), http.StatusOK)
	if !strings.Contains(body, ev.ID) || !strings.Contains(body, `name="trace_id" value="`+strings.ToUpper(ev.TraceID)+`"`) {
		t.Fatalf("the events page filtered by trace does not show the event or the filter")
	}
	// Without a TraceURL, no link out.
	body = get(t, admin.New(b.Inspector(), admin.Options{}), "/events/"+ev.ID, http.StatusOK)
	if strings.Contains(body, `id="trace-link"`) || !strings.Contains(body, ev.TraceID) {
		t.Fatalf("without TraceURL: want the trace id and no link out")
	}
}

func get(t testing.TB, h http.Handler, path string, status int) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	if rec.Code != status {
		t.Fatalf("GET %s: %d, want %d: %s", path, rec.Code, status, body)
	}
	return string(body)
}

// TestPoison: the poison publish is a span of the message's trace, and the poison
// queue's consumer continues it.
func TestPoison(t *testing.T) {
	p := newProvider(t)
	poison := bustest.Topic(t, "poison")
	b := newBus(t, bus.Config{TracerProvider: p, PoisonTopic: poison,
		Retry: middleware.RetryConfig{MaxRetries: 1, InitialInterval: time.Millisecond}})
	topic := bustest.Topic(t, "orders")
	must(t, b.Handle("billing", topic, func(ctx context.Context, msg *message.Message) error { return errors.New("always") }))
	must(t, b.Handle("graveyard", poison, func(ctx context.Context, msg *message.Message) error { return nil }))
	run(t, b)
	msg := bus.NewMessage([]byte(`{}`))
	must(t, b.Publish(context.Background(), topic, msg)) // no span in ctx: a new trace
	row(t, b.Store(), "billing", msg.UUID, modelevent.StatusPoisoned)
	pub := p.span(t, "publish "+topic)
	if pub.Parent().IsValid() {
		t.Fatalf("publish without a span in ctx has parent %v, want a root", pub.Parent())
	}
	pq := p.span(t, "publish "+poison)
	if pq.SpanContext().TraceID() != pub.SpanContext().TraceID() || pq.Parent().SpanID() != pub.SpanContext().SpanID() {
		t.Fatalf("poison publish in trace %s parent %s, want the message's trace %s", pq.SpanContext().TraceID(), pq.Parent().SpanID(), pub.SpanContext().TraceID())
	}
	wantAttrs(t, pq, map[string]string{"messaging.destination.name": poison, "messaging.operation.type": "send", "messaging.message.id": msg.UUID})
	if n := len(p.spans("process " + topic)); n != 2 {
		t.Fatalf("%d process spans, want 2 (MaxRetries 1)", n)
	}
	grave := p.span(t, "process "+poison)
	if grave.Parent().SpanID() != pq.SpanContext().SpanID() {
		t.Fatalf("the poison topic's consumer span has parent %s, want the poison publish %s", grave.Parent().SpanID(), pq.SpanContext().SpanID())
	}
}

// TestReplay: a replay from the console (a context without span) continues the trace
// of the replayed message.
func TestReplay(t *testing.T) {
	p := newProvider(t)
	b := newBus(t, bus.Config{TracerProvider: p})
	topic := bustest.Topic(t, "orders")
	must(t, b.Handle("billing", topic, func(ctx context.Context, msg *message.Message) error { return nil }))
	run(t, b)
	ctx, root := p.Tracer("app").Start(context.Background(), "checkout")
	msg := bus.NewMessage([]byte(`{}`))
	must(t, b.Publish(ctx, topic, msg))
	root.End()
	ev := row(t, b.Store(), "billing", msg.UUID, modelevent.StatusSucceeded)
	id, err := b.Replay(context.Background(), ev.ID)
	must(t, err)
	replayed, err := b.Store().Get(context.Background(), id)
	must(t, err)
	if replayed.TraceID != root.SpanContext().TraceID().String() {
		t.Fatalf("replayed row has trace %q, want the original %s", replayed.TraceID, root.SpanContext().TraceID())
	}
	if n := len(p.spans("publish " + topic)); n < 1 {
		t.Fatal("no publish span")
	}
}

// TestNoProvider: without a TracerProvider nothing is injected; with a no-op provider
// the caller's context still propagates (a provider that does not record).
func TestNoProvider(t *testing.T) {
	b := newBus(t, bus.Config{})
	topic := bustest.Topic(t, "orders")
	got := make(chan *message.Message, 1)
	must(t, b.Handle("billing", topic, func(ctx context.Context, msg *message.Message) error {
		if trace.SpanContextFromContext(ctx).IsValid() {
			return errors.New("span in the handler's context without tracing")
		}
		got <- msg
		return nil
	}))
	run(t, b)
	p := newProvider(t)
	ctx, root := p.Tracer("app").Start(context.Background(), "checkout")
	defer root.End()
	must(t, b.Publish(ctx, topic, bus.NewMessage([]byte(`{}`))))
	if m := <-got; m.Metadata.Get(tracing.TraceparentKey) != "" {
		t.Fatalf("traceparent injected without a TracerProvider: %v", m.Metadata)
	}

	b2 := newBus(t, bus.Config{TracerProvider: noop.NewTracerProvider()})
	must(t, b2.Handle("billing", topic, func(ctx context.Context, msg *message.Message) error {
		got <- msg
		return nil
	}))
	run(t, b2)
	must(t, b2.Publish(ctx, topic, bus.NewMessage([]byte(`{}`))))
	if m := <-got; middleware.TraceIDOf(m.Metadata) != root.SpanContext().TraceID().String() {
		t.Fatalf("no-op provider: metadata %v, want the caller's trace %s", m.Metadata, root.SpanContext().TraceID())
	}
}

// TestBatch: one publish span for a Publish of several messages, with the batch size.
func TestBatch(t *testing.T) {
	p := newProvider(t)
	b := newBus(t, bus.Config{TracerProvider: p})
	topic := bustest.Topic(t, "orders")
	msgs := []*message.Message{bus.NewMessage([]byte(`1`)), bus.NewMessage([]byte(`2`)), bus.NewMessage([]byte(`3`))}
	must(t, b.Publish(context.Background(), topic, msgs...))
	pub := p.span(t, "publish "+topic)
	wantAttrs(t, pub, map[string]string{"messaging.batch.message_count": "3"})
	for _, m := range msgs {
		if middleware.TraceIDOf(m.Metadata) != pub.SpanContext().TraceID().String() {
			t.Fatalf("message %s: %v", m.UUID, m.Metadata)
		}
	}
	if _, ok := attrs(pub)["messaging.message.id"]; ok {
		t.Error("a batch span has messaging.message.id")
	}
}

// TestMiddleware: the middleware for any handler reads the handler and topic from the
// message's context (here ContextWithConsumer, as for a retry from the store).
func TestMiddleware(t *testing.T) {
	p := newProvider(t)
	tr := tracing.New(p, "kafka")
	ctx, root := p.Tracer("app").Start(context.Background(), "checkout")
	msg := message.NewMessage("m-1", nil)
	tracing.Inject(ctx, msg.Metadata)
	root.End()
	msg.SetContext(middleware.ContextWithConsumer(context.Background(), "billing", "orders"))
	var inner trace.SpanContext
	_, err := tr.Middleware(func(m *message.Message) ([]*message.Message, error) {
		inner = trace.SpanContextFromContext(m.Context())
		return nil, nil
	})(msg)
	must(t, err)
	s := p.span(t, "process orders")
	if s.Parent().SpanID() != root.SpanContext().SpanID() || inner.SpanID() != s.SpanContext().SpanID() {
		t.Fatalf("parent %s, in handler %s; want child of %s, carried", s.Parent().SpanID(), inner.SpanID(), root.SpanContext().SpanID())
	}
	wantAttrs(t, s, map[string]string{"messaging.system": "kafka", "messaging.consumer.group.name": "billing", "messaging.message.id": "m-1"})
	if trace.SpanContextFromContext(msg.Context()).IsValid() {
		t.Fatal("the message's context was not restored after the attempt")
	}
}
