// Package tracing is the OpenTelemetry tracing of eventbus: the W3C trace context
// (propagation.TraceContext) travels in message metadata, and every publish, every
// handling attempt and every poison publish is a span following the OpenTelemetry
// messaging semantic conventions (semconv v1.43.0).
//
// The bus uses it when bus.Config.TracerProvider is set; with a nil provider the bus
// runs none of this code. Only the OpenTelemetry API is linked: the SDK and the
// exporters are the application's choice.
//
// Spans, named "{operation} {destination}":
//
//   - "publish orders", kind producer, messaging.operation.type send: one per
//     Bus.Publish call (the broker's publish), by the outbox relay per forwarded
//     message, and by the poison queue ("publish eventbus.poison"). Its parent is the
//     span of the caller's context; a context without one continues the trace the
//     message already carries (a replay, a relayed or a poisoned message). Its context
//     is injected into every message's metadata (keys traceparent and tracestate).
//   - "create orders", kind producer, messaging.operation.type create: one per
//     Outbox.PublishTx call, in the caller's transaction. The outbox row keeps its
//     context, so the relay's publish and the consumers continue the trace of the
//     transaction that wrote the event.
//   - "process orders", kind consumer, messaging.operation.type process: one per
//     handling attempt (a message retried three times has four), a child of the
//     context the message carries. The handler's context carries it, so the
//     application's own spans and Bus.Publish calls in the handler join the trace.
//
// Every span has messaging.system (the backend: kafka, nats, rabbitmq for amqp,
// memory, sql), messaging.destination.name (the topic), messaging.operation.type and
// messaging.operation.name; messaging.message.id (the Watermill UUID) when it is about
// one message, messaging.batch.message_count otherwise; process spans
// messaging.consumer.group.name (the consumer's name). A failure sets the span's status
// to error, records the error and sets error.type.
package tracing
