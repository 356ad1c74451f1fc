package amqp

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// ErrClosed is returned by calls on a closed Backend.
var ErrClosed = errors.New("amqp: backend closed")

// Backend is the RabbitMQ backend: a publisher on a connection of its own and one
// consumer connection shared by every subscriber, both reconnecting with backoff until
// Close. It is safe for concurrent use.
type Backend struct {
	cfg    Config
	logger watermill.LoggerAdapter

	pubConn *wamqp.ConnectionWrapper
	subConn *wamqp.ConnectionWrapper
	pub     *publisher

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
}

// New validates cfg (after defaults), connects to the broker within
// cfg.ConnectTimeout (or ctx, whichever ends first) and returns the backend. A nil
// logger discards logs.
func New(ctx context.Context, cfg Config, logger watermill.LoggerAdapter) (*Backend, error) {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Backend{cfg: cfg, logger: logger, subs: map[*subscriber]struct{}{}}
	var err error
	if b.pubConn, err = b.connect(ctx, "publisher"); err != nil {
		return nil, err
	}
	if b.subConn, err = b.connect(ctx, "consumer"); err != nil {
		_ = b.pubConn.Close()
		return nil, err
	}
	b.pub = newPublisher(b)
	return b, nil
}

// connect opens one reconnecting connection, named role in the broker's console.
func (b *Backend) connect(ctx context.Context, role string) (*wamqp.ConnectionWrapper, error) {
	amqpCfg := amqp091.Config{
		Dial:       amqp091.DefaultDial(b.cfg.ConnectTimeout),
		Heartbeat:  defaultHeartbeat,
		Properties: amqp091.Table{"connection_name": "eventbus " + role},
	}
	if b.cfg.TLS != nil {
		tlsCfg, err := b.cfg.TLS.build()
		if err != nil {
			return nil, err
		}
		amqpCfg.TLSClientConfig = tlsCfg
	}
	connCfg := wamqp.ConnectionConfig{
		AmqpURI:    b.cfg.URL,
		AmqpConfig: &amqpCfg,
		Reconnect: &wamqp.ReconnectConfig{
			BackoffInitialInterval:     b.cfg.Reconnect.InitialInterval,
			BackoffRandomizationFactor: 0.5,
			BackoffMultiplier:          b.cfg.Reconnect.Multiplier,
			BackoffMaxInterval:         b.cfg.Reconnect.MaxInterval,
		},
	}
	type result struct {
		conn *wamqp.ConnectionWrapper
		err  error
	}
	done := make(chan result, 1)
	go func() {
		c, err := wamqp.NewConnection(connCfg, b.logger)
		done <- result{c, err}
	}()
	ctx, cancel := context.WithTimeout(ctx, b.cfg.ConnectTimeout+b.cfg.ConnectTimeout/2)
	defer cancel()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("backend_settings.url: cannot connect to %s (%s connection): %w; check that RabbitMQ runs there and the credentials, vhost and TLS settings are right",
				redact(b.cfg.URL), role, r.err)
		}
		return r.conn, nil
	case <-ctx.Done():
		go func() { // close the connection if it arrives late
			if r := <-done; r.conn != nil {
				_ = r.conn.Close()
			}
		}()
		return nil, fmt.Errorf("backend_settings.url: cannot connect to %s within connect_timeout %v: %w; check the address or raise connect_timeout",
			redact(b.cfg.URL), b.cfg.ConnectTimeout, ctx.Err())
	}
}

// Config returns the backend's configuration with defaults applied.
func (b *Backend) Config() Config { return b.cfg }

// Publisher returns the publisher for every topic. Publish returns once the broker
// confirmed every message (with publisher_confirms), or an error the caller may retry:
// while the connection is down, publishing fails fast instead of blocking.
func (b *Backend) Publisher() message.Publisher { return b.pub }

// Subscriber returns a subscriber for consumer on the shared consumer connection. With
// durable_pubsub, Subscribe declares the consumer's durable queue and binds it to the
// topic's exchange; subscribers with the same consumer name share that queue.
func (b *Backend) Subscriber(consumer string) (message.Subscriber, error) {
	if consumer == "" {
		return nil, errors.New("amqp: subscriber needs a consumer name")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	ws, err := wamqp.NewSubscriberWithConnection(b.cfg.watermillConfig(consumer), b.logger, b.subConn)
	if err != nil {
		return nil, fmt.Errorf("amqp: subscriber %q: %w", consumer, err)
	}
	s := newSubscriber(b, ws)
	b.subs[s] = struct{}{}
	return s, nil
}

// Close closes every subscriber the backend made (their unacked messages go back to
// their queues), the publisher and both connections. It is idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := make([]*subscriber, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	var errs []error
	for _, s := range subs {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := b.pub.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := b.pubConn.Close(); err != nil {
		errs = append(errs, fmt.Errorf("amqp: close publisher connection: %w", err))
	}
	if err := b.subConn.Close(); err != nil {
		errs = append(errs, fmt.Errorf("amqp: close consumer connection: %w", err))
	}
	return errors.Join(errs...)
}

func (b *Backend) forget(s *subscriber) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}
