// Package nats is the NATS JetStream backend of eventbus, built on watermill-nats
// (github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats) and nats.go. A blank import
// registers it under the name "nats":
//
//	import _ "github.com/go-eventbus/eventbus/backends/nats"
//
//	backend: nats
//	backend_settings:
//	  url: nats://127.0.0.1:4222
//
// With embedded: true the backend starts a real NATS server with JetStream inside the
// process (github.com/nats-io/nats-server/v2), storing messages in store_dir: a
// durable broker with no external service, for one-machine deployments and demos. The
// server is linked by a second blank import, so programs that connect to an external
// server do not carry it (about 10 MiB stripped):
//
//	import _ "github.com/go-eventbus/eventbus/backends/nats/embedded"
//
// # Mapping
//
// A topic is published on the subject subject_prefix+topic, stored in one JetStream
// stream per topic (stream_prefix+Name(topic), created on first use with
// auto_provision; an existing stream whose subjects cover the subject is used as is).
// A bus consumer reads each topic through its own durable push consumer
// (durable_prefix+Name(consumer)) delivered to its own queue group
// (queue_group_prefix+Name(consumer)). Name keeps letters, digits, '-' and '_' and
// turns every other character ('.', spaces, '*', '>', …) into '_'.
//
// # Delivery semantics
//
// At least once. Publish returns after JetStream stored the message (file storage by
// default); with track_msg_id a message published again with the same UUID within two
// minutes is stored once. Every consumer receives every message of its topic;
// processes running the same consumer share its messages (queue group), each process
// handling subscribers_count messages at a time. A message is acked (synchronously)
// only after the handler returned; a nack delivers it again at once; a message not
// acked within ack_wait (a crash, a lost connection, a stopped subscriber) is
// delivered again. Messages published while a consumer is stopped wait in the stream;
// a consumer that subscribes for the first time receives every message the stream
// still holds (deliver_policy all) or only new ones (new). Order is the publish order
// for one subscriber with subscribers_count 1, and is lost on redelivery or with
// parallel subscribers. Connections reconnect on their own (max_reconnects -1 means
// forever); publishes fail while the server is away and the caller retries.
//
// # Messages from other publishers
//
// Every JetStream message is recordable, whoever published it. One without Watermill's
// UUID header gets its Nats-Msg-Id, else "nats:<stream>/<stream sequence>" (a
// name-based version 8 UUID of it when longer than 64 characters), the same on every
// redelivery. A header with several values becomes one metadata value, the JSON array
// of its values. A message that still cannot be decoded (a Watermill UUID header with
// several different values or longer than 64 characters) is handed over with
// modelevent.MetadataDecodeError set, and the bus poisons it.
package nats
