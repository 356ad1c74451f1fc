package nats

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	natsgo "github.com/nats-io/nats.go"
)

// publisher maps topics to subjects, provisions their streams once, and publishes
// through watermill-nats.
type publisher struct {
	b  *Backend
	wm *wmnats.Publisher

	once sync.Once
	done atomic.Bool
}

// Publish stores msgs, in order, in the stream of topic; it returns after JetStream
// acknowledged each, or with the first error (the messages before it are stored).
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.done.Load() {
		return fmt.Errorf("nats: publish to %q: %w", topic, ErrClosed)
	}
	subject, _, err := p.b.topicStream(p.b.js, topic)
	if err != nil {
		return fmt.Errorf("nats: publish to %q: %w", topic, err)
	}
	err = p.wm.Publish(subject, msgs...)
	if err != nil && (errors.Is(err, natsgo.ErrNoStreamResponse) || errors.Is(err, natsgo.ErrNoResponders)) && p.b.cfg.autoProvision() {
		// The stream was deleted since it was cached: provision it again, once.
		p.b.streams.Delete(subject)
		if _, _, perr := p.b.topicStream(p.b.js, topic); perr == nil {
			err = p.wm.Publish(subject, msgs...)
		}
	}
	if err != nil {
		return fmt.Errorf("nats: publish to %q: %w", topic, err)
	}
	return nil
}

// Close closes the publisher's connection: publishes in progress fail with the
// connection's error, later ones with ErrClosed. It is idempotent.
func (p *publisher) Close() error {
	var err error
	p.once.Do(func() {
		p.done.Store(true)
		err = p.wm.Close()
	})
	return err
}
