package amqp

import (
	"context"
	"fmt"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
)

// subscriber is a watermill-amqp subscriber on the backend's consumer connection,
// tracked so that closing the backend closes it.
type subscriber struct {
	b   *Backend
	sub *wamqp.Subscriber
}

// Subscribe declares the topology of topic (see Config.Topology) and delivers its
// messages one at a time: the next one comes after the previous is acked or nacked; a
// nacked message is requeued. The subscription resumes by itself after the
// connection is lost and restored.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	ch, err := s.sub.Subscribe(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("amqp: subscribe %q: %w", topic, err)
	}
	return ch, nil
}

// SubscribeInitialize declares the topology of topic without consuming, so messages
// published from now on wait for the consumer.
func (s *subscriber) SubscribeInitialize(topic string) error {
	if err := s.sub.SubscribeInitialize(topic); err != nil {
		return fmt.Errorf("amqp: initialize %q: %w", topic, err)
	}
	return nil
}

// Close ends the subscriptions; the shared connection stays open. Idempotent.
func (s *subscriber) Close() error {
	s.b.forget(s)
	return s.sub.Close()
}
