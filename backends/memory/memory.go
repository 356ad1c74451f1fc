// Package memory is the embedded default backend of eventbus: Watermill's GoChannel
// inside the process, with a consumer group per consumer name.
//
// Every consumer receives every message published to the topics it subscribes to.
// Unlike a bare GoChannel subscription, a consumer's subscription outlives a stop of the
// consumer: messages published while it is stopped wait in memory and are delivered when
// it starts again, and a message in flight when it stops is delivered again later (until
// the backend is closed). Messages published to a topic before any consumer of it has
// subscribed are dropped, as with GoChannel; nothing survives the process. Use it for
// one-process deployments, demos and tests.
package memory

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// Config configures the memory backend.
type Config struct {
	// OutputBuffer is the buffer of each consumer's channel. Default 0: a consumer takes
	// the next message when it is ready for it.
	OutputBuffer int64 `yaml:"output_buffer"`
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("memory: backend closed")

// Backend is the in-process broker. It is safe for concurrent use.
type Backend struct {
	pubsub *gochannel.GoChannel
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	groups map[groupKey]*group
	closed bool
}

type groupKey struct{ topic, consumer string }

// group is one consumer's lasting subscription to one topic.
type group struct {
	in <-chan *message.Message

	mu     sync.Mutex
	held   *message.Message // taken from in but not handed to a subscriber
	active bool
}

// New starts a memory backend.
func New(cfg Config, logger watermill.LoggerAdapter) *Backend {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Backend{
		pubsub: gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: cfg.OutputBuffer}, logger),
		ctx:    ctx,
		cancel: cancel,
		groups: map[groupKey]*group{},
	}
}

// Publisher returns the GoChannel publisher.
func (b *Backend) Publisher() message.Publisher { return b.pubsub }

// Subscriber returns a subscriber for consumer.
func (b *Backend) Subscriber(consumer string) (message.Subscriber, error) {
	if consumer == "" {
		return nil, errors.New("memory: subscriber needs a consumer name")
	}
	return &subscriber{b: b, consumer: consumer, done: make(chan struct{})}, nil
}

// Close closes every subscription and the GoChannel. Held messages are dropped.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	return b.pubsub.Close()
}

func (b *Backend) group(topic, consumer string) (*group, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	k := groupKey{topic, consumer}
	if g, ok := b.groups[k]; ok {
		return g, nil
	}
	in, err := b.pubsub.Subscribe(b.ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("memory: subscribe %q: %w", topic, err)
	}
	g := &group{in: in}
	b.groups[k] = g
	return g, nil
}

type subscriber struct {
	b        *Backend
	consumer string

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// Subscribe returns the consumer's messages of topic until ctx is done or the
// subscriber is closed. One subscription per consumer and topic may be active at a time.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	select {
	case <-s.done:
		return nil, errors.New("memory: subscriber closed")
	default:
	}
	g, err := s.b.group(topic, s.consumer)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	if g.active {
		g.mu.Unlock()
		return nil, fmt.Errorf("memory: consumer %q already subscribed to %q", s.consumer, topic)
	}
	g.active = true
	g.mu.Unlock()

	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		for {
			g.mu.Lock()
			msg := g.held
			g.held = nil
			g.mu.Unlock()
			if msg == nil {
				var ok bool
				select {
				case msg, ok = <-g.in:
					if !ok {
						g.release(nil)
						return
					}
				case <-ctx.Done():
					g.release(nil)
					return
				case <-s.done:
					g.release(nil)
					return
				}
			}
			select {
			case out <- msg:
			case <-ctx.Done():
				g.release(msg)
				return
			case <-s.done:
				g.release(msg)
				return
			}
		}
	}()
	return out, nil
}

// release ends the active subscription, keeping msg for the next one.
func (g *group) release(msg *message.Message) {
	g.mu.Lock()
	g.held = msg
	g.active = false
	g.mu.Unlock()
}

// Close ends the subscriber's subscriptions; the consumer's group keeps its messages.
func (s *subscriber) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	s.wg.Wait()
	return nil
}
