package kafka_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	_ "github.com/go-eventbus/eventbus/backends/kafka"
	"github.com/go-eventbus/eventbus/bus"
)

// TestPubSub runs Watermill's universal Pub/Sub suite on publishers and subscribers
// built through the registry from backend_settings, as a bus builds them.
func TestPubSub(t *testing.T) {
	hosts := startKafka(t)
	newPubSub := func(t *testing.T, consumer string) (message.Publisher, message.Subscriber) {
		b, err := bus.OpenBackend(context.Background(), "kafka", settings(hosts, "partitions", 1), bus.BackendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		sub, err := b.Subscriber(consumer)
		if err != nil {
			t.Fatal(err)
		}
		return b.Publisher(), sub
	}
	tests.TestPubSub(t,
		tests.Features{
			ConsumerGroups: true,
			// Topics are created with one partition (partitions: 1 above; the default
			// is 16), so a consumer sees them in publish order.
			GuaranteedOrder: true,
			Persistent:      true,
			// A consumer is a consumer group: a new subscriber of the same consumer
			// continues where the group is, which is what the upstream test's single
			// constructor gives. A new consumer name does receive old messages
			// (initial_offset: oldest); TestNewConsumerReceivesOldMessages checks it.
			NewSubscriberReceivesOldMessages: false,
			// Sarama may deliver again what was acked but not yet committed.
			ExactlyOnceDelivery: false,
		},
		// Every upstream test gets its own consumer (group), named after the test.
		func(t *testing.T) (message.Publisher, message.Subscriber) { return newPubSub(t, t.Name()) },
		newPubSub,
	)
}
