package sqlbackend

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// publisher wraps the watermill-sql publisher: Close is idempotent and safe while a
// Publish runs, and errors name the topic.
type publisher struct {
	pub *wsql.Publisher

	mu        sync.RWMutex // held for reading by Publish, for writing by Close
	closeOnce sync.Once
	closed    chan struct{}
}

// Publish inserts msgs into topic's table in one statement.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	select {
	case <-p.closed:
		return fmt.Errorf("sql: publish %q: %w", topic, ErrClosed)
	default:
	}
	if err := p.pub.Publish(topic, msgs...); err != nil {
		return fmt.Errorf("sql: publish %q: %w", topic, err)
	}
	return nil
}

// Close refuses new Publish calls and waits for running ones.
func (p *publisher) Close() error {
	var err error
	p.closeOnce.Do(func() {
		close(p.closed)
		p.mu.Lock()
		err = p.pub.Close()
		p.mu.Unlock()
	})
	return err
}

// subscriber wraps a watermill-sql subscriber so the backend can close it.
type subscriber struct {
	sub       *wsql.Subscriber
	b         *Backend
	closeOnce sync.Once
	closeErr  error
}

// Subscribe delivers the consumer group's messages of topic, oldest first, one at a
// time: the next message comes after the previous one is acked.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	ch, err := s.sub.Subscribe(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("sql: subscribe %q: %w", topic, err)
	}
	return ch, nil
}

// Close stops the subscriber's subscriptions; an unacked message is delivered again.
func (s *subscriber) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.sub.Close()
		s.b.forget(s)
	})
	return s.closeErr
}

var badTopicChars = regexp.MustCompile(`[^A-Za-z0-9\-\$\:\.\_]`)

// validTopic applies watermill-sql's topic rule (letters, digits and -$:._).
func validTopic(topic string) error {
	if topic == "" || badTopicChars.MatchString(topic) {
		return fmt.Errorf("topic %q may hold only letters, digits and - $ : . _: %w", topic, wsql.ErrInvalidTopicName)
	}
	return nil
}

// dsnHas reports whether dsn sets the parameter key (URL query or keyword form).
func dsnHas(dsn, key string) bool {
	return strings.Contains(dsn, key+"=")
}

// SubscribeInitialize creates topic's tables (watermill's message.SubscribeInitializer).
func (s *subscriber) SubscribeInitialize(topic string) error {
	if err := s.sub.SubscribeInitialize(topic); err != nil {
		return fmt.Errorf("sql: initialize %q: %w", topic, err)
	}
	return nil
}
