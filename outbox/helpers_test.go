package outbox_test

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/backends/memory"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/modelevent"
)

// database is one of the databases the outbox runs on, fresh per test.
type database struct {
	dialect string
	dsn     func(t testing.TB) string
}

var databases = []database{
	{modelevent.DialectSQLite, func(t testing.TB) string { return "file:" + filepath.Join(t.TempDir(), "app.db") }},
	{modelevent.DialectPostgres, testenv.FreshPostgres},
	{modelevent.DialectMySQL, testenv.FreshMySQL},
}

// published is one message the relay handed to the broker.
type published struct {
	topic, uuid, objectID string
	payload               []byte
}

// brokerLog is a memory backend that logs what is published to it, in order, and can
// be made to fail or to run a hook on a publish.
type brokerLog struct {
	*memory.Backend
	mu     sync.Mutex
	log    []published
	fail   int               // the next fail publishes fail
	onSend func(n int) error // called with the number of messages published so far
}

func newBrokerLog() *brokerLog { return &brokerLog{Backend: memory.New(memory.Config{}, nil)} }

func (b *brokerLog) Publisher() message.Publisher { return logPublisher{b} }

func (b *brokerLog) messages() []published {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]published(nil), b.log...)
}

func (b *brokerLog) setHook(fn func(n int) error) {
	b.mu.Lock()
	b.onSend = fn
	b.mu.Unlock()
}

type logPublisher struct{ b *brokerLog }

var errBrokerDown = errors.New("broker down")

func (p logPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.b.mu.Lock()
	if p.b.fail > 0 {
		p.b.fail--
		p.b.mu.Unlock()
		return errBrokerDown
	}
	for _, m := range msgs {
		p.b.log = append(p.b.log, published{topic, m.UUID, m.Metadata.Get(modelevent.MetadataObjectID), m.Payload})
	}
	n, hook := len(p.b.log), p.b.onSend
	p.b.mu.Unlock()
	if err := p.b.Backend.Publisher().Publish(topic, msgs...); err != nil {
		return err
	}
	if hook != nil {
		return hook(n)
	}
	return nil
}

func (p logPublisher) Close() error { return nil }

// waitFor polls cond until it holds or 20s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
