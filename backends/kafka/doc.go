// Package kafka is the Kafka backend of eventbus, built on watermill-kafka (sarama).
// Import it for its side effect to make backend "kafka" available:
//
//	import _ "github.com/go-eventbus/eventbus/backends/kafka"
//
// and configure it with backend_settings (see Config):
//
//	backend: kafka
//	backend_settings:
//	  broker_hosts: ["127.0.0.1:9092"]
//	  consumer_group: shop
//
// New builds a Backend without the registry.
//
// # Delivery semantics
//
// Publishing waits for every in-sync replica to acknowledge a message (acks=all) and
// returns an error when the brokers cannot be reached after a few quick retries; the
// caller decides whether to retry, and a retried publish may store the message twice.
// The value of the metadata key partition_key (default "eventbus_key") is the Kafka
// message key: messages with the same key go to the same partition and keep their
// order; messages without one are spread over the partitions.
//
// Every bus consumer is a Kafka consumer group, "<consumer_group>.<consumer>", so every
// consumer receives every message of its topic and processes using the same consumer
// name share its partitions. Within a partition a consumer gets one message at a time
// and the next only after the ack; its offset is committed after the ack, in the
// background once a second and when the subscriber closes. Delivery is at least once:
// after a crash, a rebalance or a lost broker connection, messages acked since the last
// commit are delivered again (the bus records them on the same row, attempts + 1). A
// nack hands the same message over again after nack_resend_sleep, holding back the rest
// of its partition. Messages wait in the topic (for its retention) while a consumer is
// stopped; a consumer group without a committed offset starts at initial_offset, by
// default the oldest retained message, so nothing published before a consumer's first
// start is lost. Subscriptions reconnect on their own after reconnect_retry_sleep.
//
// Records from any producer are recordable: one without Watermill's UUID header gets
// the message UUID "kafka:<topic>/<partition>/<offset>" (a name-based version 8 UUID of
// that string when it is longer than 64 characters), the same on every redelivery; its
// key is set in the metadata under partition_key. A record that cannot be decoded is
// handed over with modelevent.MetadataDecodeError set, and the bus poisons it.
//
// The Backend implements bus.Backlogger: a consumer's backlog is its group's lag.
// Topics are created on first use (auto_create_topics) with partitions and
// replication_factor. There is no delayed delivery.
//
// # Schema registry
//
// With schema_registry_url, the topics named under schema_registry (topics, or schemas
// with a local .avsc file per topic) carry Confluent wire-format Avro on Kafka: magic
// byte 0, the 4-byte big-endian schema id, the Avro body. The application, the bus, the
// ModelEvent rows and the console keep seeing JSON: Publish converts the JSON payload
// with the subject's schema (subject "<topic>-value" by default) and consumption
// converts it back. A payload that does not match its schema fails Publish before
// anything is sent, naming the field; a value that cannot be decoded (not wire format,
// unknown schema id, a body that does not match) is delivered as its raw bytes with
// modelevent.MetadataDecodeError set, and the bus poisons it with that reason. While the
// registry cannot be reached, consumption of such a topic waits and retries; nothing
// is poisoned for it. schemaregistrytest is an in-process registry for tests.
package kafka
