package tracing

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/go-eventbus/eventbus/middleware"
)

// ScopeName is the instrumentation scope of the spans (the tracer's name).
const ScopeName = "github.com/go-eventbus/eventbus"

// Metadata keys of the W3C trace context, as propagation.TraceContext writes them.
const (
	// TraceparentKey carries the trace id, the parent span id and the flags.
	TraceparentKey = middleware.TraceparentKey
	// TracestateKey carries vendor-specific trace state; often absent.
	TracestateKey = "tracestate"
)

// Operation names: the first word of the span names and messaging.operation.name.
const (
	OpPublish = "publish"
	OpCreate  = "create"
	OpProcess = "process"
)

// propagator is the W3C trace context; the tracing of eventbus needs no global.
var propagator = propagation.TraceContext{}

// MetadataCarrier adapts message metadata to the propagation.TextMapCarrier that
// OpenTelemetry propagators read and write.
type MetadataCarrier message.Metadata

// Get returns the value of key, or "".
func (c MetadataCarrier) Get(key string) string { return c[key] }

// Set sets key to value.
func (c MetadataCarrier) Set(key, value string) { c[key] = value }

// Keys lists the keys.
func (c MetadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes the span context of ctx into md (traceparent, tracestate). A context
// without a valid span context writes nothing.
func Inject(ctx context.Context, md message.Metadata) {
	propagator.Inject(ctx, MetadataCarrier(md))
}

// Extract returns ctx with the span context md carries as its remote parent; ctx
// itself when md carries none or a malformed one.
func Extract(ctx context.Context, md message.Metadata) context.Context {
	if md[TraceparentKey] == "" {
		return ctx
	}
	return propagator.Extract(ctx, MetadataCarrier(md))
}

// ContextWithSpanOf returns ctx carrying the span of from: how the bus hands the span
// of an attempt to a handler whose context is not the message's. A span without a
// valid span context (a no-op provider's root) is not carried: ctx is returned.
func ContextWithSpanOf(ctx, from context.Context) context.Context {
	span := trace.SpanFromContext(from)
	if !span.SpanContext().IsValid() {
		return ctx
	}
	return trace.ContextWithSpan(ctx, span)
}

// System returns the messaging.system of a backend name: rabbitmq for amqp, the name
// itself for the others (kafka, nats, memory, sql, …).
func System(backend string) string {
	switch backend {
	case "amqp":
		return "rabbitmq"
	case "":
		return "memory"
	}
	return backend
}

// Span start options, made once: passing them allocates nothing.
var (
	producerOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}
	consumerOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
)

// maxNames bounds the span names a Tracer keeps per operation: topics are few, but a
// program that makes a topic per message must not grow memory without bound.
const maxNames = 1024

// Tracer makes the spans of one bus. It is safe for concurrent use.
type Tracer struct {
	tracer trace.Tracer
	system attribute.KeyValue
	// Span names per operation ("publish orders"), kept: no string built per span.
	names  [2]sync.Map // OpPublish, OpCreate → topic → name
	nNames atomic.Int64
}

// spanName returns "<op> <topic>".
func (t *Tracer) spanName(op int, topic string) string {
	if n, ok := t.names[op].Load(topic); ok {
		return n.(string)
	}
	n := opNames[op] + " " + topic
	if t.nNames.Add(1) <= 2*maxNames {
		t.names[op].Store(topic, n)
	}
	return n
}

// Indexes of Tracer.names.
const (
	opPublish = iota
	opCreate
)

var opNames = [2]string{OpPublish, OpCreate}

// New returns the Tracer of a bus on backend whose spans tp creates; nil when tp is
// nil: the bus then traces nothing.
func New(tp trace.TracerProvider, backend string) *Tracer {
	if tp == nil {
		return nil
	}
	return &Tracer{
		tracer: tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL)),
		system: semconv.MessagingSystemKey.String(System(backend)),
	}
}

// StartPublish starts the span of publishing msgs to topic ("publish <topic>", kind
// producer) and injects its context into every message's metadata, so consumers
// continue the trace. Its parent is the span of ctx; when ctx has none, the trace the
// first message already carries (a replayed, relayed or poisoned message). Messages
// carrying another trace are linked. End the span with End once the broker answered.
func (t *Tracer) StartPublish(ctx context.Context, topic string, msgs []*message.Message) trace.Span {
	return t.startProducer(ctx, opPublish, semconv.MessagingOperationTypeSend, topic, msgs)
}

// StartCreate starts the span of creating msgs for topic in an outbox ("create
// <topic>", kind producer) and injects its context into their metadata, which the
// outbox row keeps: the relayed message continues the trace of the transaction. End it
// with End.
func (t *Tracer) StartCreate(ctx context.Context, topic string, msgs []*message.Message) trace.Span {
	return t.startProducer(ctx, opCreate, semconv.MessagingOperationTypeCreate, topic, msgs)
}

func (t *Tracer) startProducer(ctx context.Context, op int, typ attribute.KeyValue, topic string, msgs []*message.Message) trace.Span {
	parent := ctx
	if !trace.SpanContextFromContext(ctx).IsValid() && len(msgs) > 0 && msgs[0] != nil {
		parent = Extract(ctx, msgs[0].Metadata)
	}
	_, span := t.tracer.Start(parent, t.spanName(op, topic), producerOpts...)
	if !span.SpanContext().IsValid() {
		return span // a no-op provider without a parent: nothing to record or inject
	}
	if span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 5)
		attrs = append(attrs, t.system, semconv.MessagingDestinationName(topic), typ, semconv.MessagingOperationName(opNames[op]))
		if len(msgs) == 1 {
			attrs = append(attrs, semconv.MessagingMessageID(msgs[0].UUID))
		} else {
			attrs = append(attrs, semconv.MessagingBatchMessageCount(len(msgs)))
		}
		span.SetAttributes(attrs...)
		own := span.SpanContext().TraceID()
		for _, m := range msgs {
			if m == nil {
				continue
			}
			if sc := trace.SpanContextFromContext(Extract(context.Background(), m.Metadata)); sc.IsValid() && sc.TraceID() != own {
				span.AddLink(trace.Link{SpanContext: sc})
			}
		}
	}
	sctx := trace.ContextWithSpan(ctx, span)
	for _, m := range msgs {
		if m == nil {
			continue
		}
		if m.Metadata == nil {
			m.Metadata = message.Metadata{}
		}
		Inject(sctx, m.Metadata)
	}
	return span
}

// End ends span, marking it failed when err is not nil.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(semconv.ErrorType(err))
	}
	span.End()
}

// Middleware is the per-attempt handler middleware for messages of any handler, which
// it reads from the message's context (middleware.ConsumerFromContext); see Consumer.
func (t *Tracer) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		handler, topic := middleware.ConsumerFromContext(msg.Context())
		return t.Consumer(handler, topic)(h)(msg)
	}
}

// Consumer returns the per-attempt middleware of the consumer handler of topic: every
// run of the handler is a span "process <topic>" (kind consumer), a child of the trace
// context the message carries, in the message's context while the handler runs. Put it
// inside the retry middleware (middleware.Chain.Trace), so each attempt has its own
// span.
func (t *Tracer) Consumer(handler, topic string) message.HandlerMiddleware {
	name := OpProcess + " " + topic
	attrs := []attribute.KeyValue{t.system, semconv.MessagingDestinationName(topic), semconv.MessagingOperationTypeProcess,
		semconv.MessagingOperationName(OpProcess), semconv.MessagingConsumerGroupName(handler)}
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			parent := msg.Context()
			ctx, span := t.tracer.Start(Extract(parent, msg.Metadata), name, consumerOpts...)
			if !span.SpanContext().IsValid() {
				return h(msg) // a no-op provider without a parent: nothing to carry
			}
			if span.IsRecording() {
				span.SetAttributes(attrs...)
				span.SetAttributes(semconv.MessagingMessageID(msg.UUID))
			}
			msg.SetContext(ctx)
			out, err := h(msg)
			msg.SetContext(parent)
			End(span, err)
			return out, err
		}
	}
}

// Publisher returns pub with a "publish <topic>" span around every Publish (see
// StartPublish): its parent is the span of the first message's context, else the trace
// that message carries. The bus wraps the publisher of the poison queue and of the
// outbox relay with it. Close closes pub.
func (t *Tracer) Publisher(pub message.Publisher) message.Publisher {
	return tracedPublisher{Publisher: pub, t: t}
}

type tracedPublisher struct {
	message.Publisher
	t *Tracer
}

func (p tracedPublisher) Publish(topic string, msgs ...*message.Message) error {
	ctx := context.Background()
	if len(msgs) > 0 && msgs[0] != nil {
		ctx = msgs[0].Context()
	}
	span := p.t.StartPublish(ctx, topic, msgs)
	err := p.Publisher.Publish(topic, msgs...)
	End(span, err)
	return err
}
