// Package amqp is the RabbitMQ backend of eventbus, built on watermill-amqp
// (github.com/ThreeDotsLabs/watermill-amqp/v3). Import it for its side effect and set
// `backend: amqp`:
//
//	backend: amqp
//	backend_settings:
//	  url: amqp://guest:guest@127.0.0.1:5672/
//
// or call New to build a Backend without the registry.
//
// # Topology
//
// With the default topology, durable_pubsub, every topic has a durable exchange (fanout
// by default, named after the topic) and every consumer a durable queue bound to it,
// named "{topic}_{consumer}". Every consumer receives every message of the topic;
// processes that use the same consumer name share that consumer's queue, and RabbitMQ
// spreads its messages across them. A consumer's queue is declared when it first
// subscribes: from then on messages wait in it while the consumer is stopped or down;
// messages published before that reach no queue and are dropped by the exchange.
//
// With durable_queue every topic is one durable queue, fed through the default
// exchange and declared by the first publish or subscribe. Every consumer of the topic,
// whatever its name, takes messages from that one queue: each message is handled by
// one of them (competing consumers), not by all.
//
// # Delivery
//
// At least once. Messages are persistent; with publisher_confirms (the default)
// Publish returns after the broker has taken responsibility for every message. A
// subscriber hands over one message at a time and acks it when the bus's handler
// succeeded and its ModelEvent row is stored; a nack, a crash or a lost connection
// puts unacked messages back in the queue, to be delivered again (the bus then updates
// the row, attempts + 1). Within a queue with a single running subscriber messages
// arrive in publish order; a requeued message can overtake later ones when several
// subscribers share the queue.
//
// # Messages from other publishers
//
// Every delivery is recordable, whoever published it. One without Watermill's UUID
// header takes its message-id property, else a hash of its exchange, routing key,
// timestamp, headers and body (so two identical messages without message-id are one
// row). Header values that are not strings become text (numbers as decimal text,
// nested tables and arrays as JSON). The message-id, correlation-id and content-type
// properties map to MetadataMessageID, modelevent.MetadataCorrelationID and
// MetadataContentType, on consume and on publish. A delivery that still cannot be
// decoded (a Watermill UUID header that is not a string or longer than 64 characters)
// is handed over with modelevent.MetadataDecodeError set, and the bus poisons it.
//
// # Failures
//
// The publisher and consumer connections reconnect with exponential backoff (see
// ReconnectConfig) until Close. While a connection is down, Publish fails fast with an
// error the caller retries, and subscriptions resume by themselves once it is back.
// Delayed delivery and priorities are not supported.
package amqp
