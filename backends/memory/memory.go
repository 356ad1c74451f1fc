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
//
// Publishing has backpressure, which a bare GoChannel has not: a running consumer of a
// topic holds about Config.MaxBacklog messages published to it and not yet taken at
// most, and a Publish that finds one at its bound waits for room (at most a second;
// then it publishes anyway, so that nothing is lost and no Publish blocks for long).
// GoChannel keeps a goroutine per message and consumer until the consumer takes it:
// publishers that outrun a consumer grow these without bound, and the garbage
// collector scans every one of their stacks on each cycle.
package memory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// Config configures the memory backend.
type Config struct {
	// OutputBuffer is the buffer of each consumer's channel: how many messages are
	// taken for it ahead of its router, so that handing them over is not one goroutine
	// switch per message. Those left when the consumer stops are delivered first when it
	// starts again. Default 64 (DefaultOutputBuffer); -1 for none.
	OutputBuffer int64 `yaml:"output_buffer"`
	// MaxBacklog is how many messages published to a topic each running consumer of it
	// may hold before taking them; a Publish that finds it reached waits until the
	// consumer has taken half of them (or a second passes). A bound, not an exact
	// count: concurrent Publish calls that find room add their messages together.
	// Default 1024; -1 sets no bound (GoChannel's own behaviour). A stopped consumer is
	// not waited for: the messages published while it is stopped wait for it, unbounded.
	MaxBacklog int `yaml:"max_backlog"`
}

// Validate reports a setting out of range, naming its key.
func (c Config) Validate() error {
	if c.OutputBuffer < -1 {
		return fmt.Errorf("backend_settings.output_buffer: must be -1 (none), 0 (the default, %d) or more, got %d", DefaultOutputBuffer, c.OutputBuffer)
	}
	if c.MaxBacklog < -1 {
		return fmt.Errorf("backend_settings.max_backlog: must be -1 (no bound), 0 (the default, %d) or more, got %d", DefaultMaxBacklog, c.MaxBacklog)
	}
	return nil
}

// DefaultOutputBuffer is Config.OutputBuffer's default.
const DefaultOutputBuffer = 64

// DefaultMaxBacklog is Config.MaxBacklog's default.
const DefaultMaxBacklog = 1024

// backlogWait bounds a Publish's wait for room in a consumer's backlog.
const backlogWait = time.Second

// ErrClosed is returned after Close.
var ErrClosed = errors.New("memory: backend closed")

// Backend is the in-process broker. It is safe for concurrent use.
type Backend struct {
	pubsub      *gochannel.GoChannel
	ctx         context.Context
	cancel      context.CancelFunc
	maxBacklog  int64 // 0: no bound
	outBuffer   int
	backlogWait time.Duration

	mu     sync.RWMutex
	groups map[groupKey]*group
	topics map[string][]*group // the groups of each topic; a slice is never changed, only replaced
	closed bool
}

type groupKey struct{ topic, consumer string }

// group is one consumer's lasting subscription to one topic.
type group struct {
	in <-chan *message.Message

	// backlog counts the messages published while the group is active and not taken
	// from in yet (never below 0: messages published while it was stopped are not
	// counted). Publishers add to it without a lock while it is under the bound.
	backlog atomic.Int64
	active  atomic.Bool // a subscriber takes its messages; set under mu
	waiters atomic.Int32
	// stalled is set when a publisher waited backlogWait in vain, and cleared when the
	// group takes a message: until then publishers do not wait for it again.
	stalled atomic.Bool

	mu   sync.Mutex
	held []*message.Message // taken from in but not handed to a subscriber, oldest first
	room chan struct{}      // closed when the backlog has room or the group stops; nil when nobody waits
}

// New starts a memory backend.
func New(cfg Config, logger watermill.LoggerAdapter) *Backend {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	maxBacklog := int64(cfg.MaxBacklog)
	switch {
	case maxBacklog == 0:
		maxBacklog = DefaultMaxBacklog
	case maxBacklog < 0:
		maxBacklog = 0
	}
	outBuffer := int(cfg.OutputBuffer)
	switch {
	case outBuffer == 0:
		outBuffer = DefaultOutputBuffer
	case outBuffer < 0:
		outBuffer = 0
	}
	return &Backend{
		outBuffer:   outBuffer,
		pubsub:      gochannel.NewGoChannel(gochannel.Config{}, logger),
		ctx:         ctx,
		cancel:      cancel,
		maxBacklog:  maxBacklog,
		backlogWait: backlogWait,
		groups:      map[groupKey]*group{},
		topics:      map[string][]*group{},
	}
}

// Publisher returns the publisher: GoChannel's, behind the backlog bound.
func (b *Backend) Publisher() message.Publisher { return publisher{b} }

// publisher publishes to the GoChannel once every running consumer of the topic has
// room in its backlog.
type publisher struct{ b *Backend }

// Publish waits for room in the backlog of the topic's running consumers, at most a
// second, and publishes msgs.
func (p publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.b.maxBacklog > 0 {
		p.b.admit(topic, int64(len(msgs)))
	}
	return p.b.pubsub.Publish(topic, msgs...)
}

// Close closes nothing: the backend's Close closes the GoChannel.
func (publisher) Close() error { return nil }

// admit counts n messages into the backlog of every active group of topic, first
// waiting while one is at its bound, until backlogWait has passed in all.
func (b *Backend) admit(topic string, n int64) {
	b.mu.RLock()
	groups := b.topics[topic]
	b.mu.RUnlock()
	var deadline <-chan time.Time
	for _, g := range groups {
		if !g.active.Load() {
			continue
		}
		if g.backlog.Load() < b.maxBacklog || g.stalled.Load() {
			g.backlog.Add(n)
			continue
		}
		if deadline == nil {
			t := time.NewTimer(b.backlogWait)
			defer t.Stop()
			deadline = t.C
		}
		deadline = g.waitRoom(b, deadline)
		g.backlog.Add(n)
	}
}

// waitRoom waits until g's backlog is under the bound, g stops, the backend closes or
// deadline passes; it returns deadline, or a closed channel once it passed, so that
// the next groups of the topic are not waited for again.
func (g *group) waitRoom(b *Backend, deadline <-chan time.Time) <-chan time.Time {
	g.waiters.Add(1)
	defer g.waiters.Add(-1)
	for {
		g.mu.Lock()
		if !g.active.Load() || g.backlog.Load() < b.maxBacklog {
			g.mu.Unlock()
			return deadline
		}
		if g.room == nil {
			g.room = make(chan struct{})
		}
		room := g.room
		g.mu.Unlock()
		select {
		case <-room:
		case <-deadline:
			g.stalled.Store(true)
			return closedChan
		case <-b.ctx.Done():
			return closedChan
		}
	}
}

var closedChan = func() chan time.Time { c := make(chan time.Time); close(c); return c }()

// took counts one message taken from in out of the backlog, and wakes the waiting
// publishers once it is down to half the bound.
func (g *group) took(maxBacklog int64) {
	if g.stalled.Load() {
		g.stalled.Store(false)
	}
	for {
		v := g.backlog.Load()
		if v <= 0 || g.backlog.CompareAndSwap(v, v-1) {
			if v-1 <= maxBacklog/2 && g.waiters.Load() > 0 {
				g.wake()
			}
			return
		}
	}
}

// wake wakes the publishers waiting for room in g.
func (g *group) wake() {
	g.mu.Lock()
	if g.room != nil {
		close(g.room)
		g.room = nil
	}
	g.mu.Unlock()
}

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
	b.topics[topic] = append(b.topics[topic][:len(b.topics[topic]):len(b.topics[topic])], g) // a new slice: admit reads the old one without the lock
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
	if g.active.Load() {
		g.mu.Unlock()
		return nil, fmt.Errorf("memory: consumer %q already subscribed to %q", s.consumer, topic)
	}
	g.active.Store(true)
	g.mu.Unlock()

	out := make(chan *message.Message, s.b.outBuffer)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		for {
			var msg *message.Message
			g.mu.Lock()
			if len(g.held) > 0 {
				msg, g.held[0] = g.held[0], nil
				g.held = g.held[1:]
			}
			g.mu.Unlock()
			if msg == nil {
				var ok bool
				select {
				case msg, ok = <-g.in:
					if !ok {
						g.release(out, nil)
						return
					}
					if s.b.maxBacklog > 0 {
						g.took(s.b.maxBacklog)
					}
				case <-ctx.Done():
					g.release(out, nil)
					return
				case <-s.done:
					g.release(out, nil)
					return
				}
			}
			select {
			case out <- msg:
			case <-ctx.Done():
				g.release(out, msg)
				return
			case <-s.done:
				g.release(out, msg)
				return
			}
		}
	}()
	return out, nil
}

// release ends the active subscription. The messages still in out, which its router no
// longer takes, and msg, taken from in and not handed over, are kept for the next one,
// before those kept already. Publishers stop counting and waiting for the group until
// it is subscribed again.
func (g *group) release(out chan *message.Message, msg *message.Message) {
	var back []*message.Message
	for len(out) > 0 {
		select {
		case m := <-out:
			back = append(back, m)
		default:
		}
	}
	if msg != nil {
		back = append(back, msg)
	}
	g.mu.Lock()
	if len(back) > 0 {
		g.held = append(back, g.held...)
	}
	g.active.Store(false)
	g.backlog.Store(0)
	if g.room != nil {
		close(g.room)
		g.room = nil
	}
	g.mu.Unlock()
}

// Close ends the subscriber's subscriptions; the consumer's group keeps its messages.
func (s *subscriber) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	s.wg.Wait()
	return nil
}
