package amqp

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/go-eventbus/eventbus/bus"
)

// openForUniversal builds the backend through the registry from a settings map, as
// a config file would, and returns its publisher and a subscriber for consumer.
func openForUniversal(t *testing.T, settings map[string]any, consumer string) (message.Publisher, message.Subscriber) {
	t.Helper()
	b, err := bus.OpenBackend(context.Background(), Name, settings, bus.BackendOptions{})
	if err != nil {
		t.Fatalf("open backend: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	sub, err := b.Subscriber(consumer)
	if err != nil {
		t.Fatalf("subscriber: %v", err)
	}
	return b.Publisher(), sub
}

// TestUniversalDurablePubSub runs Watermill's universal Pub/Sub tests on the default
// topology. Features: consumer groups are consumer names (a queue per consumer);
// order holds within a queue; messages persist in durable queues. Reconnect tests need
// a broker restart command and are covered by TestFaultBrokerConnectionCut instead.
func TestUniversalDurablePubSub(t *testing.T) {
	url := brokerURL(t)
	settings := func() map[string]any {
		// concurrency 1: the suite checks publish order, which the default (16) gives up.
		return map[string]any{"url": url, "concurrency": 1, "reconnect": map[string]any{"initial_interval": "100ms", "max_interval": "1s"}}
	}
	tests.TestPubSub(t,
		tests.Features{
			ConsumerGroups:                      true,
			ExactlyOnceDelivery:                 false,
			GuaranteedOrder:                     true,
			GuaranteedOrderWithSingleSubscriber: true,
			Persistent:                          true,
		},
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			return openForUniversal(t, settings(), "test")
		},
		func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			return openForUniversal(t, settings(), group)
		},
	)
}

// TestUniversalDurableQueue runs the universal tests on the durable_queue topology,
// where all consumers of a topic share one queue: ConsumerGroups is false.
func TestUniversalDurableQueue(t *testing.T) {
	url := brokerURL(t)
	tests.TestPubSub(t,
		tests.Features{
			ConsumerGroups:                      false,
			ExactlyOnceDelivery:                 false,
			GuaranteedOrder:                     true,
			GuaranteedOrderWithSingleSubscriber: true,
			Persistent:                          true,
			ForceShort:                          true, // the full run is in TestUniversalDurablePubSub
		},
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			return openForUniversal(t, map[string]any{"url": url, "topology": "durable_queue", "concurrency": 1}, "test")
		},
		nil,
	)
}
