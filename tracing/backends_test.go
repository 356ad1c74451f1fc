package tracing_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel/trace"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/internal/testenv/amqptest"
	"github.com/go-eventbus/eventbus/internal/testenv/natstest"
	"github.com/go-eventbus/eventbus/modelevent"
	"github.com/go-eventbus/eventbus/outbox"

	_ "github.com/go-eventbus/eventbus/backends/all"
)

// natsSettings are settings for the shared NATS server with a stream prefix of t's
// own; its streams are deleted when t ends.
func natsSettings(t *testing.T) map[string]any {
	t.Helper()
	return natstest.Settings(t, "ebtrace")
}

// amqpSettings are settings for the shared RabbitMQ; the exchange of topic and the
// queue of consumer on it (durable_pubsub's names) are deleted when t ends.
func amqpSettings(t *testing.T, topic, consumer string) map[string]any {
	url := amqptest.URL(t)
	amqptest.Cleanup(t, url, []string{topic}, []string{topic + "_" + consumer})
	return map[string]any{"url": url}
}

// TestAcrossBackends: a message published on one bus and consumed on another, each
// with its own tracer provider, over a real broker: the consumer's span is a child of
// the producer's publish span in the producer's trace, the handler's context carries
// it, the consumed row holds the trace id and the console links it.
func TestAcrossBackends(t *testing.T) {
	cases := []struct {
		name, backend, system string
		settings              func(t *testing.T, topic string) map[string]any
	}{
		{"nats", "nats", "nats", func(t *testing.T, _ string) map[string]any { return natsSettings(t) }},
		{"kafka", "kafka", "kafka", func(t *testing.T, _ string) map[string]any {
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			must(t, err)
			t.Cleanup(c.Close)
			return map[string]any{"broker_hosts": c.ListenAddrs(), "session_timeout": "6s", "heartbeat_interval": "200ms", "rebalance_timeout": "5s"}
		}},
		{"amqp", "amqp", "rabbitmq", func(t *testing.T, topic string) map[string]any { return amqpSettings(t, topic, "billing") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			topic := bustest.Topic(t, "orders")
			settings := tc.settings(t, topic)
			prodTP, consTP := newProvider(t), newProvider(t)
			producer := newBus(t, bus.Config{Backend: tc.backend, BackendSettings: settings, TracerProvider: prodTP})
			consumer := newBus(t, bus.Config{Backend: tc.backend, BackendSettings: settings, TracerProvider: consTP})
			inHandler := make(chan trace.SpanContext, 1)
			must(t, consumer.Handle("billing", topic, func(ctx context.Context, msg *message.Message) error {
				select {
				case inHandler <- trace.SpanContextFromContext(ctx):
				default:
				}
				return nil
			}))
			run(t, consumer)

			ctx, root := prodTP.Tracer("app").Start(context.Background(), "checkout")
			msg := bus.NewMessage([]byte(`{"order":1}`))
			must(t, producer.Publish(ctx, topic, msg))
			root.End()
			ev := row(t, consumer.Store(), "billing", msg.UUID, modelevent.StatusSucceeded)

			traceID := root.SpanContext().TraceID()
			pub := prodTP.span(t, "publish "+topic)
			wantAttrs(t, pub, map[string]string{"messaging.system": tc.system, "messaging.destination.name": topic,
				"messaging.operation.type": "send", "messaging.message.id": msg.UUID})
			proc := consTP.span(t, "process "+topic)
			if proc.SpanContext().TraceID() != traceID || proc.Parent().SpanID() != pub.SpanContext().SpanID() || !proc.Parent().IsRemote() {
				t.Fatalf("process span: trace %s parent %s (remote %v), want a child of the publish span %s of trace %s",
					proc.SpanContext().TraceID(), proc.Parent().SpanID(), proc.Parent().IsRemote(), pub.SpanContext().SpanID(), traceID)
			}
			wantAttrs(t, proc, map[string]string{"messaging.system": tc.system, "messaging.destination.name": topic,
				"messaging.operation.type": "process", "messaging.consumer.group.name": "billing", "messaging.message.id": msg.UUID})
			if sc := <-inHandler; sc.SpanID() != proc.SpanContext().SpanID() {
				t.Fatalf("the handler's context carries span %s, want %s", sc.SpanID(), proc.SpanContext().SpanID())
			}
			if ev.TraceID != traceID.String() {
				t.Fatalf("consumed row trace id %q, want %s", ev.TraceID, traceID)
			}
			checkConsole(t, consumer, ev)
		})
	}
}

// TestOutbox: PublishTx in the caller's transaction is a create span of the caller's
// trace; the relay's publish and the consumer on another bus continue it (PostgreSQL:
// the outbox and the sql backend in one database).
func TestOutbox(t *testing.T) {
	dsn := testenv.FreshPostgres(t)
	store := bus.StoreConfig{Driver: "postgres", DSN: dsn}
	settings := map[string]any{"driver": "postgres", "dsn": dsn, "poll_interval": "20ms"}
	prodTP, consTP := newProvider(t), newProvider(t)
	producer := newBus(t, bus.Config{Backend: "sql", BackendSettings: settings, Store: store, TracerProvider: prodTP,
		Outbox: bus.OutboxConfig{Enabled: true, Config: outbox.Config{PollInterval: 10 * time.Millisecond}}})
	consumer := newBus(t, bus.Config{Backend: "sql", BackendSettings: settings, Store: store, TracerProvider: consTP})
	topic := bustest.Topic(t, "orders")
	must(t, consumer.Handle("projection", topic, func(ctx context.Context, msg *message.Message) error { return nil }))
	run(t, consumer)
	run(t, producer)

	ctx, root := prodTP.Tracer("app").Start(context.Background(), "place order")
	db := producer.Store().(*modelevent.SQLStore).DB()
	tx, err := db.BeginTx(ctx, nil)
	must(t, err)
	msg, err := bus.NewChangeMessage(map[string]int{"id": 7}, "7", modelevent.Created)
	if err == nil {
		err = producer.PublishTx(ctx, tx, topic, msg)
	}
	uuid := msg.UUID
	must(t, err)
	must(t, tx.Commit())
	root.End()
	ev := row(t, consumer.Store(), "projection", uuid, modelevent.StatusSucceeded)

	traceID := root.SpanContext().TraceID()
	create := prodTP.span(t, "create "+topic)
	if create.Parent().SpanID() != root.SpanContext().SpanID() || create.SpanKind() != trace.SpanKindProducer {
		t.Fatalf("create span: parent %s kind %v, want a producer child of the transaction's span", create.Parent().SpanID(), create.SpanKind())
	}
	wantAttrs(t, create, map[string]string{"messaging.operation.type": "create", "messaging.destination.name": topic, "messaging.message.id": uuid, "messaging.system": "sql"})
	relay := prodTP.span(t, "publish "+topic)
	if relay.SpanContext().TraceID() != traceID || relay.Parent().SpanID() != create.SpanContext().SpanID() {
		t.Fatalf("relay publish: trace %s parent %s, want a child of the create span %s", relay.SpanContext().TraceID(), relay.Parent().SpanID(), create.SpanContext().SpanID())
	}
	proc := consTP.span(t, "process "+topic)
	if proc.SpanContext().TraceID() != traceID || proc.Parent().SpanID() != relay.SpanContext().SpanID() {
		t.Fatalf("process span: trace %s parent %s, want a child of the relay's publish %s", proc.SpanContext().TraceID(), proc.Parent().SpanID(), relay.SpanContext().SpanID())
	}
	if ev.TraceID != traceID.String() {
		t.Fatalf("consumed row trace id %q, want %s", ev.TraceID, traceID)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		prod, err := producer.Store().List(context.Background(), modelevent.Filter{MessageUUID: uuid, Direction: modelevent.Produced}, modelevent.ListOptions{})
		must(t, err)
		if len(prod.Events) == 1 && prod.Events[0].Status == modelevent.StatusPublished {
			if prod.Events[0].TraceID != traceID.String() {
				t.Fatalf("produced row has trace %q, want %s", prod.Events[0].TraceID, traceID)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("produced row %+v, want one, published", prod.Events)
		}
	}
	checkConsole(t, consumer, ev)
}
