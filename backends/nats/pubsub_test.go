package nats

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
)

// features are what the tests showed: consumer groups (durable + queue group),
// persistence, and order for a single subscriber with subscribers_count 1. Delivery is
// at least once, not exactly once: an unacked message comes back after ack_wait.
// NewSubscriberReceivesOldMessages is false only because the constructor without a
// group gives every subscriber the same consumer name (see universal); a new consumer
// does receive the old messages (deliver_policy all), as TestNewConsumerGetsOldMessages
// shows.
// TestReconnect needs RestartServiceCommand; the broker restart is covered by
// TestFaultEmbeddedRestart instead.
var features = tests.Features{
	ConsumerGroups:                      true,
	ExactlyOnceDelivery:                 false,
	GuaranteedOrder:                     true,
	GuaranteedOrderWithSingleSubscriber: true,
	Persistent:                          true,
	RequireSingleInstance:               false,
	NewSubscriberReceivesOldMessages:    false,
}

// universal runs Watermill's universal suite on backends opened through the registry
// with settings: each constructor call opens its own backend (own connections), as a
// separate process would. Without a consumer group the subscribers use one default
// consumer name (as Kafka's universal tests use one default group), so the 50
// subscribers of TestConcurrentSubscribe share the messages instead of each reading
// all of them.
func universal(t *testing.T, settings map[string]any) {
	// A short ack_wait keeps the tests that close subscribers with unacked messages
	// quick; the messages come back after it. One subscription per consumer: the
	// suite checks publish order, which the default subscribers_count (16) gives up.
	settings = with(settings, "ack_wait", "3s", "subscribers_count", 1)
	tests.TestPubSub(t, features,
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			b := openBackend(t, settings)
			sub, err := b.Subscriber("watermill-default")
			if err != nil {
				t.Fatal(err)
			}
			return b.Publisher(), sub
		},
		func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			b := openBackend(t, settings)
			sub, err := b.Subscriber(group)
			if err != nil {
				t.Fatal(err)
			}
			return b.Publisher(), sub
		},
	)
}

// TestPubSubEmbedded runs the universal suite against an embedded server: one backend
// owns it (opened with embedded: true) and the constructors connect to it by url.
func TestPubSubEmbedded(t *testing.T) {
	owner := openBackend(t, embeddedSettings(t))
	universal(t, map[string]any{"url": owner.URL()})
}

// TestPubSubServer runs the universal suite against the shared NATS server.
func TestPubSubServer(t *testing.T) {
	if testing.Short() {
		t.Skip("the embedded run covers the suite in -short mode")
	}
	universal(t, serverSettings(t))
}
