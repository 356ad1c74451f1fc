package amqp

import (
	"context"
	"fmt"
	"sync"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
)

// subscriber is a watermill-amqp subscriber on the backend's consumer connection,
// tracked so that closing the backend closes it.
type subscriber struct {
	b   *Backend
	sub *wamqp.Subscriber

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

func newSubscriber(b *Backend, ws *wamqp.Subscriber) *subscriber {
	return &subscriber{b: b, sub: ws, done: make(chan struct{})}
}

// Subscribe declares the topology of topic (see Config.Topology) and delivers its
// messages. Each of the Config.Concurrency AMQP consumers hands over one message at a
// time and the next after it is acked or nacked; a nacked message is requeued. The
// subscription resumes by itself after the connection is lost and restored.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	n := s.b.cfg.Concurrency
	if n <= 1 {
		ch, err := s.sub.Subscribe(ctx, topic)
		if err != nil {
			return nil, fmt.Errorf("amqp: subscribe %q: %w", topic, err)
		}
		return ch, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	ins := make([]<-chan *message.Message, 0, n)
	for i := 0; i < n; i++ {
		ch, err := s.sub.Subscribe(ctx, topic)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("amqp: subscribe %q (consumer %d of %d): %w", topic, i+1, n, err)
		}
		ins = append(ins, ch)
	}
	out := make(chan *message.Message)
	var fwd sync.WaitGroup
	for _, in := range ins {
		fwd.Add(1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer fwd.Done()
			for m := range in {
				select {
				case out <- m:
				case <-ctx.Done():
					m.Nack()
				case <-s.done:
					m.Nack()
				}
			}
		}()
	}
	go func() {
		fwd.Wait()
		cancel()
		close(out)
	}()
	return out, nil
}

// SubscribeInitialize declares the topology of topic without consuming, so messages
// published from now on wait for the consumer.
func (s *subscriber) SubscribeInitialize(topic string) error {
	if err := s.sub.SubscribeInitialize(topic); err != nil {
		return fmt.Errorf("amqp: initialize %q: %w", topic, err)
	}
	return nil
}

// Close ends the subscriptions (unacked messages return to the queue); the shared
// connection stays open. Idempotent.
func (s *subscriber) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	s.b.forget(s)
	err := s.sub.Close()
	s.wg.Wait()
	return err
}
