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
// Publishing has backpressure, which a bare GoChannel has not. GoChannel keeps two
// goroutines per message and consumer until the consumer acks it: publishers that
// outrun a consumer grow these without bound, and the garbage collector scans every one
// of their stacks on each cycle (and walks every goroutine the process ever had). Here a
// consumer takes at most Config.MaxInFlight messages it has not acked yet, as a
// broker's prefetch does, and a Publish waits while about Config.MaxBacklog messages
// wait for a running consumer of the topic to take them: until half of them are taken,
// the message's context ends (then nothing is sent), or a second passes (then it
// publishes anyway, and does not wait for that consumer again until it takes one). A
// handler does not wait for its own consumer. Nothing is lost, and no Publish is
// blocked for long. A stopped consumer is not waited for: the messages published while
// it is stopped wait for it, each with GoChannel's goroutine, without bound.
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
	OutputBuffer int `yaml:"output_buffer"`
	// MaxInFlight is how many messages a consumer takes and has not acked or nacked yet
	// (handlers running, messages in its channel or kept for it while it is stopped):
	// at the bound it takes the next one only when one of those is acked or nacked, as a
	// broker's prefetch does. Default 1024 (DefaultMaxInFlight); -1 sets no bound
	// (GoChannel's own behaviour).
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxBacklog is how many messages published to a topic may wait for a running
	// consumer of it to take them: a Publish that finds it reached waits until half of
	// them are taken (or a second passes, or the message's context ends). A bound, not
	// an exact count: concurrent Publish calls that find room add their messages
	// together. Default 1024 (DefaultMaxBacklog); -1 sets no bound. A stopped consumer
	// is not waited for: what is published while it is stopped waits for it, unbounded,
	// and publishers wait for it again once it runs.
	MaxBacklog int `yaml:"max_backlog"`
}

// Validate reports a setting out of range, naming its key.
func (c Config) Validate() error {
	if c.OutputBuffer < -1 || c.OutputBuffer > maxOutputBuffer {
		return fmt.Errorf("backend_settings.output_buffer: must be -1 (none), 0 (the default, %d) or up to %d, got %d", DefaultOutputBuffer, maxOutputBuffer, c.OutputBuffer)
	}
	if c.MaxInFlight < -1 {
		return fmt.Errorf("backend_settings.max_in_flight: must be -1 (no bound), 0 (the default, %d) or more, got %d", DefaultMaxInFlight, c.MaxInFlight)
	}
	if c.MaxBacklog < -1 {
		return fmt.Errorf("backend_settings.max_backlog: must be -1 (no bound), 0 (the default, %d) or more, got %d", DefaultMaxBacklog, c.MaxBacklog)
	}
	return nil
}

// The defaults of Config.
const (
	DefaultOutputBuffer = 64
	DefaultMaxInFlight  = 1024
	DefaultMaxBacklog   = 1024
	maxOutputBuffer     = 1 << 16
)

// backlogWait bounds a Publish's wait for room in a consumer's backlog.
const backlogWait = time.Second

// ErrClosed is returned after Close.
var ErrClosed = errors.New("memory: backend closed")

// Backend is the in-process broker. It is safe for concurrent use.
type Backend struct {
	pubsub      *gochannel.GoChannel
	ctx         context.Context // ends at Close
	cancel      context.CancelFunc
	outBuffer   int
	maxInFlight int   // 0: no bound
	maxBacklog  int64 // 0: no bound
	backlogWait time.Duration

	mu     sync.RWMutex
	groups map[groupKey]*group
	topics map[string][]*group // the groups of each topic; a slice is never changed, only replaced
	closed bool
}

type groupKey struct{ topic, consumer string }

// group is one consumer's lasting subscription to one topic.
type group struct {
	in       <-chan *message.Message
	consumer string

	// backlog counts the messages published to the group's topic and not taken from in
	// yet, whether the consumer runs or not. A nacked message is sent again by
	// GoChannel: it counts again.
	backlog atomic.Int64
	active  atomic.Bool // a subscriber takes its messages; set under mu
	// full is set, under mu, by a publisher that found the backlog at its bound, and
	// cleared once it is down to half: until then every publisher waits.
	full    atomic.Bool
	waiters atomic.Int32
	// stalled is set when a publisher waited backlogWait in vain, and cleared when the
	// group takes a message: until then publishers do not wait for it.
	stalled atomic.Bool
	// slots holds a token per message taken from in and not acked or nacked yet; nil
	// when in-flight messages are not bounded.
	slots chan struct{}

	mu   sync.Mutex
	held []*message.Message // taken from in but not handed to a subscriber, oldest first
	room chan struct{}      // closed when full is cleared or the group stops; nil when nobody waits
}

// New starts a memory backend with cfg, which Validate accepts (a value below -1 is
// taken as -1).
func New(cfg Config, logger watermill.LoggerAdapter) *Backend {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Backend{
		pubsub:      gochannel.NewGoChannel(gochannel.Config{}, logger),
		ctx:         ctx,
		cancel:      cancel,
		outBuffer:   setting(cfg.OutputBuffer, DefaultOutputBuffer),
		maxInFlight: setting(cfg.MaxInFlight, DefaultMaxInFlight),
		maxBacklog:  int64(setting(cfg.MaxBacklog, DefaultMaxBacklog)),
		backlogWait: backlogWait,
		groups:      map[groupKey]*group{},
		topics:      map[string][]*group{},
	}
}

// setting is v, or def when v is 0, or 0 (none) when v is negative.
func setting(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// Publisher returns the publisher: GoChannel's, behind the backlog bound.
func (b *Backend) Publisher() message.Publisher { return publisher{b} }

// publisher publishes to the GoChannel once every running consumer of the topic has
// room in its backlog.
type publisher struct{ b *Backend }

// Publish waits for room in the backlog of the topic's running consumers — until the
// first message's context ends, or at most a second — and publishes msgs. When the
// context ends first, nothing is sent.
func (p publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.b.maxBacklog == 0 || len(msgs) == 0 {
		return p.b.pubsub.Publish(topic, msgs...)
	}
	if err := p.b.admit(msgs[0].Context(), topic); err != nil {
		return fmt.Errorf("memory: publish %q: nothing sent while waiting for room in a consumer's backlog: %w", topic, err)
	}
	// Counted under mu, which a new group's subscription to the GoChannel takes too:
	// the groups counted are exactly the GoChannel's subscribers of topic.
	p.b.mu.RLock()
	defer p.b.mu.RUnlock()
	for _, g := range p.b.topics[topic] {
		g.backlog.Add(int64(len(msgs)))
	}
	return p.b.pubsub.Publish(topic, msgs...)
}

// Close closes nothing: the backend's Close closes the GoChannel.
func (publisher) Close() error { return nil }

// errWaited ends a wait for room after backlogWait.
var errWaited = errors.New("memory: backlog wait over")

// admit waits while a running consumer of topic has its backlog at the bound, until
// ctx ends or backlogWait has passed. A handler of the consumer does not wait for it
// (ctx is the message's context: a handler's, Watermill's router names the handler and
// its topic in it): it holds one of the consumer's in-flight messages, and publishers
// that do would stop the consumer they wait for.
func (b *Backend) admit(ctx context.Context, topic string) error {
	b.mu.RLock()
	groups := b.topics[topic]
	b.mu.RUnlock()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	own := ""
	if message.SubscribeTopicFromCtx(ctx) == topic {
		own = message.HandlerNameFromCtx(ctx)
	}
	for _, g := range groups {
		if !g.mustWait(b.maxBacklog) || (own != "" && own == g.consumer) {
			continue
		}
		if timer == nil {
			timer = time.NewTimer(b.backlogWait)
		}
		err := g.waitRoom(ctx, b, timer.C)
		if errors.Is(err, errWaited) {
			break // the other consumers are not waited for either
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// mustWait says whether a publisher waits for g: g runs, is not stalled, and its
// backlog is at the bound (or full, not yet down to half).
func (g *group) mustWait(maxBacklog int64) bool {
	if !g.active.Load() || g.stalled.Load() {
		return false
	}
	return g.full.Load() || g.backlog.Load() >= maxBacklog
}

// waitRoom waits until g's backlog is down to half the bound, g stops or stalls, the
// backend closes (ErrClosed), deadline passes (errWaited; g is then stalled) or ctx
// ends (its error).
func (g *group) waitRoom(ctx context.Context, b *Backend, deadline <-chan time.Time) error {
	g.waiters.Add(1)
	defer g.waiters.Add(-1)
	for {
		g.mu.Lock()
		switch v := g.backlog.Load(); {
		case v >= b.maxBacklog:
			g.full.Store(true)
		case v <= b.maxBacklog/2 && g.full.Load():
			g.full.Store(false)
			g.closeRoom()
		}
		if !g.active.Load() || g.stalled.Load() || !g.full.Load() {
			g.mu.Unlock()
			return nil
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
			g.wake(false) // the other waiters stop waiting for g too
			return errWaited
		case <-ctx.Done():
			return ctx.Err()
		case <-b.ctx.Done():
			return ErrClosed
		}
	}
}

// took counts one message taken from in out of the backlog (which may go below 0 for a
// moment: a nacked message is counted again by watch, which may run after the message
// was taken again). Once the backlog is down to half the bound it clears full and wakes
// the waiting publishers; a waiter counts itself before it reads the backlog, so a take
// either sees it and checks under mu, or happens before the waiter's read.
func (g *group) took(maxBacklog int64) {
	if g.stalled.Load() {
		g.stalled.Store(false)
	}
	if g.backlog.Add(-1) > maxBacklog/2 || (!g.full.Load() && g.waiters.Load() == 0) {
		return
	}
	g.mu.Lock()
	if g.backlog.Load() <= maxBacklog/2 {
		g.full.Store(false)
		g.closeRoom()
	}
	g.mu.Unlock()
}

// wake wakes the publishers waiting for room in g, clearing full first when clear is
// set.
func (g *group) wake(clear bool) {
	g.mu.Lock()
	if clear {
		g.full.Store(false)
	}
	g.closeRoom()
	g.mu.Unlock()
}

// closeRoom wakes the publishers waiting for room in g; g.mu is held.
func (g *group) closeRoom() {
	if g.room != nil {
		close(g.room)
		g.room = nil
	}
}

// watch gives back msg's in-flight slot once it is acked or nacked. A nacked message
// is sent again by GoChannel, and so counts in the backlog again.
func (g *group) watch(b *Backend, msg *message.Message) {
	select {
	case <-msg.Acked():
	case <-msg.Nacked():
		if b.maxBacklog > 0 {
			g.backlog.Add(1)
		}
	case <-b.ctx.Done():
	}
	<-g.slots
}

// Subscriber returns a subscriber for consumer.
func (b *Backend) Subscriber(consumer string) (message.Subscriber, error) {
	if consumer == "" {
		return nil, errors.New("memory: subscriber needs a consumer name")
	}
	return &subscriber{b: b, consumer: consumer, done: make(chan struct{})}, nil
}

// Close ends every subscription (their channels are closed shortly after it returns) and
// closes the GoChannel. Messages kept for stopped consumers, and those not acked yet,
// are dropped.
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
	g := &group{in: in, consumer: consumer}
	if b.maxInFlight > 0 {
		g.slots = make(chan struct{}, b.maxInFlight)
	}
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
			if s.b.ctx.Err() != nil {
				g.release(out, nil)
				return
			}
			var msg *message.Message
			g.mu.Lock()
			if len(g.held) > 0 {
				msg, g.held[0] = g.held[0], nil
				g.held = g.held[1:]
			}
			g.mu.Unlock()
			if msg == nil {
				if msg = s.take(ctx, g); msg == nil {
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
			case <-s.b.ctx.Done():
				g.release(out, msg)
				return
			}
		}
	}()
	return out, nil
}

// take takes the group's next message from in, once it has an in-flight slot for it;
// nil when the subscription ends first.
func (s *subscriber) take(ctx context.Context, g *group) *message.Message {
	if g.slots != nil {
		select {
		case g.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		case <-s.done:
			return nil
		case <-s.b.ctx.Done():
			return nil
		}
	}
	select {
	case msg, ok := <-g.in:
		if ok {
			if s.b.maxBacklog > 0 {
				g.took(s.b.maxBacklog)
			}
			if g.slots != nil {
				go g.watch(s.b, msg)
			}
			return msg
		}
	case <-ctx.Done():
	case <-s.done:
	case <-s.b.ctx.Done():
	}
	if g.slots != nil {
		<-g.slots
	}
	return nil
}

// release ends the active subscription. The messages still in out, which its router no
// longer takes, and msg, taken from in and not handed over, are kept for the next one,
// before those kept already. Publishers stop waiting for the group until it is
// subscribed again.
func (g *group) release(out chan *message.Message, msg *message.Message) {
	var back []*message.Message
drain:
	for {
		select {
		case m := <-out:
			back = append(back, m)
		default:
			break drain
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
	g.mu.Unlock()
	g.wake(true)
}

// Close ends the subscriber's subscriptions; the consumer's group keeps its messages.
func (s *subscriber) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	s.wg.Wait()
	return nil
}
