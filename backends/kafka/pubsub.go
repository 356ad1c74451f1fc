package kafka

import (
	"context"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// publisher guards watermill-kafka's publisher: sarama panics when a closed producer is
// used, so Close waits for the publishes in progress.
type publisher struct {
	b *Backend

	mu     sync.RWMutex
	pub    *kafka.Publisher
	closed bool
}

// Publish sends msgs to topic, creating it first if needed.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return fmt.Errorf("kafka: publish %q: %w", topic, ErrClosed)
	}
	if p.b.serde != nil && p.b.serde.handles(topic) {
		// Encode every message before sending any: a payload that does not match its
		// schema fails the whole call and nothing is published.
		wire, err := p.b.serde.encodeAll(topic, msgs)
		if err != nil {
			return fmt.Errorf("kafka: publish %q: %w", topic, err)
		}
		msgs = wire
	}
	if err := p.b.ensureTopic(topic); err != nil {
		return err
	}
	if err := p.pub.Publish(topic, msgs...); err != nil {
		return fmt.Errorf("kafka: publish %q: %w", topic, err)
	}
	return nil
}

// Close closes the publisher (Backend.Close does too). It is idempotent and waits for
// the publishes in progress.
func (p *publisher) Close() error { return p.close() }

func (p *publisher) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if err := p.pub.Close(); err != nil {
		return fmt.Errorf("kafka: close publisher: %w", err)
	}
	return nil
}

// subscriber creates the topic before subscribing to it.
type subscriber struct {
	b   *Backend
	sub *kafka.Subscriber
}

// Subscribe joins the consumer's group on topic; messages arrive on the returned
// channel until ctx ends or the subscriber is closed.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if s.b.isClosed() {
		return nil, fmt.Errorf("kafka: subscribe %q: %w", topic, ErrClosed)
	}
	if err := s.b.ensureTopic(topic); err != nil {
		return nil, err
	}
	ch, err := s.sub.Subscribe(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("kafka: subscribe %q: %w", topic, err)
	}
	return ch, nil
}

// Close leaves the consumer groups and commits the acked offsets.
func (s *subscriber) Close() error { return s.sub.Close() }
