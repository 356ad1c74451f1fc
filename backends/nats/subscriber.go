package nats

import (
	"context"
	"fmt"
	"sync"
	"time"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	natsgo "github.com/nats-io/nats.go"
)

// drainWait bounds how long Close waits for the connection to drain.
const drainWait = 5 * time.Second

// subscriber is one bus consumer's watermill-nats subscriber. Before subscribing to a
// topic it provisions the topic's stream and the consumer's durable push consumer, so
// that watermill-nats binds to that durable rather than creating one it would delete
// on unsubscribe: the consumer's position survives stops, restarts and crashes.
type subscriber struct {
	b        *Backend
	consumer string
	conn     *natsgo.Conn
	js       natsgo.JetStreamContext
	wm       *wmnats.Subscriber

	once sync.Once
	err  error
}

func newSubscriber(b *Backend, consumer string, conn *natsgo.Conn) (*subscriber, error) {
	js, err := conn.JetStream()
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	durable := b.cfg.DurableName(consumer)
	wm, err := wmnats.NewSubscriberWithNatsConn(conn, wmnats.SubscriberSubscriptionConfig{
		Unmarshaler:       &marshaler{},
		SubscribersCount:  b.cfg.SubscribersCount,
		AckWaitTimeout:    b.cfg.AckWait,
		CloseTimeout:      b.cfg.AckWait,
		SubscribeTimeout:  b.cfg.ConnectTimeout,
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		QueueGroupPrefix:  b.cfg.QueueGroup(consumer),
		JetStream: wmnats.JetStreamConfig{
			AutoProvision: false, // done in Subscribe, with our names
			// ManualAck: watermill-nats acks after the handler; without it nats.go
			// would also ack when the callback returns, even on an ack timeout.
			SubscribeOptions:  []natsgo.SubOpt{natsgo.ManualAck()},
			DurablePrefix:     durable,
			DurableCalculator: func(string, string) string { return durable },
		},
	}, b.logger)
	if err != nil {
		return nil, err
	}
	return &subscriber{b: b, consumer: consumer, conn: conn, js: js, wm: wm}, nil
}

// Subscribe returns the consumer's messages of topic until ctx is done or the
// subscriber is closed. Each message must be acked or nacked: an ack is confirmed by
// JetStream before the next message of that subscription is handed out; a nack
// delivers the message again at once; a message neither acked nor nacked within
// ack_wait is delivered again.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	subject, stream, err := s.b.topicStream(s.js, topic)
	if err != nil {
		return nil, fmt.Errorf("nats: consumer %s: subscribe %q: %w", s.consumer, topic, err)
	}
	if err := s.b.ensureConsumer(s.js, stream, subject, s.consumer); err != nil {
		return nil, fmt.Errorf("nats: consumer %s: subscribe %q: %w", s.consumer, topic, err)
	}
	ch, err := s.wm.Subscribe(ctx, subject)
	if err != nil {
		return nil, fmt.Errorf("nats: consumer %s: subscribe %q: %w", s.consumer, topic, err)
	}
	return ch, nil
}

// SubscribeInitialize provisions the stream of topic (message.SubscribeInitializer).
func (s *subscriber) SubscribeInitialize(topic string) error {
	if _, _, err := s.b.topicStream(s.js, topic); err != nil {
		return fmt.Errorf("nats: initialize %q: %w", topic, err)
	}
	return nil
}

// Close ends the subscriptions and drains and closes the connection. Messages handed
// out and not yet acked are delivered again after ack_wait. The durable consumers
// stay. It is idempotent.
func (s *subscriber) Close() error {
	s.once.Do(func() {
		// wm.Close unsubscribes and starts draining the connection. Waiting for the
		// drain to end means the server has processed the unsubscriptions, so it no
		// longer pushes messages here that nobody would ack before ack_wait.
		if err := s.wm.Close(); err != nil {
			s.err = fmt.Errorf("nats: close consumer %s: %w", s.consumer, err)
		}
		deadline := time.Now().Add(drainWait)
		for !s.conn.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		s.conn.Close()
		s.b.forget(s)
	})
	return s.err
}
