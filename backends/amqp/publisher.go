package amqp

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
)

const defaultHeartbeat = 10 * time.Second

// publisher publishes through a watermill-amqp publisher on the backend's publisher
// connection, and replaces that publisher (and its channel pool) after an error.
//
// Why: watermill-amqp v3.0.2's pooled channel provider drops a channel from its pool
// when reopening it fails (pooledChannelProvider.Channel returns the error without
// putting the channel back), so after a few failures during an outage every Publish
// would block forever on an empty pool; and closing such a pool panics on the nil
// channel. A fresh publisher after any failure sidesteps both.
type publisher struct {
	b *Backend

	mu     sync.Mutex
	cur    *innerPublisher
	closed bool

	queuesMu sync.Mutex
	queues   map[string]bool // durable_queue: queues declared by Publish
}

type innerPublisher struct {
	pub      *wamqp.Publisher
	inFlight sync.WaitGroup
}

func newPublisher(b *Backend) *publisher {
	return &publisher{b: b, queues: map[string]bool{}}
}

// Publish sends msgs to topic's exchange (or queue, with durable_queue) and, with
// publisher_confirms, returns after the broker confirmed each of them. An error means
// some messages may not have been stored: publish them again (consumers then may see
// a message twice, with the same UUID).
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	in, err := p.acquire()
	if err != nil {
		return fmt.Errorf("amqp: publish %q: %w", topic, err)
	}
	defer in.inFlight.Done()
	if err := p.declareQueue(topic); err != nil {
		p.discard(in)
		return fmt.Errorf("amqp: publish %q: %w", topic, err)
	}
	if err := in.pub.Publish(topic, msgs...); err != nil {
		p.discard(in)
		return fmt.Errorf("amqp: publish %q: %w", topic, err)
	}
	return nil
}

// acquire returns the current inner publisher, building one if needed, with its
// in-flight count raised.
func (p *publisher) acquire() (*innerPublisher, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if p.cur == nil {
		if !p.b.pubConn.IsConnected() {
			return nil, errors.New("not connected to the broker (reconnecting)")
		}
		wp, err := wamqp.NewPublisherWithConnection(p.b.cfg.watermillConfig(""), p.b.logger, p.b.pubConn)
		if err != nil {
			return nil, err
		}
		p.cur = &innerPublisher{pub: wp}
	}
	p.cur.inFlight.Add(1)
	return p.cur, nil
}

// discard retires in after a failure; it is closed once its in-flight calls end.
func (p *publisher) discard(in *innerPublisher) {
	p.mu.Lock()
	if p.cur != in {
		p.mu.Unlock()
		return
	}
	p.cur = nil
	p.mu.Unlock()
	go func() {
		in.inFlight.Wait()
		closeQuietly(in.pub, p.b.logger)
	}()
}

// declareQueue declares topic's queue once with durable_queue, so messages published
// before any consumer subscribed wait in it (watermill-amqp declares queues only on
// Subscribe, and the default exchange drops messages for a missing queue).
func (p *publisher) declareQueue(topic string) error {
	if p.b.cfg.Topology != TopologyDurableQueue {
		return nil
	}
	name := p.b.cfg.queueName(topic, "")
	p.queuesMu.Lock()
	defer p.queuesMu.Unlock()
	if p.queues[name] {
		return nil
	}
	conn := p.b.pubConn.Connection()
	if conn == nil || !p.b.pubConn.IsConnected() {
		return errors.New("not connected to the broker (reconnecting)")
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("declare queue %q: %w", name, err)
	}
	defer func() { _ = ch.Close() }()
	noteDeclared("queue", name)
	if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare queue %q: %w", name, err)
	}
	p.queues[name] = true
	return nil
}

// Close closes the publisher; Publish then returns ErrClosed. Idempotent.
func (p *publisher) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	in := p.cur
	p.cur = nil
	p.mu.Unlock()
	if in != nil {
		closeQuietly(in.pub, p.b.logger)
	}
	return nil
}

// closeQuietly closes a watermill-amqp publisher without closing the shared
// connection, surviving the nil-channel panic of its pool (see publisher).
func closeQuietly(pub *wamqp.Publisher, logger watermill.LoggerAdapter) {
	defer func() {
		if r := recover(); r != nil {
			logger.Debug("amqp: closing a broken channel pool", watermill.LogFields{"panic": fmt.Sprint(r)})
		}
	}()
	_ = pub.Close()
}
