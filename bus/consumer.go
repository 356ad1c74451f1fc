package bus

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
	"github.com/go-eventbus/eventbus/tracing"
)

// ConsumerInfo describes a consumer and counts its work since the process started.
type ConsumerInfo struct {
	Name  string        `json:"name"`
	Topic string        `json:"topic"`
	State control.State `json:"state"`
	// Processed counts messages acked (succeeded or poisoned).
	Processed int64 `json:"processed"`
	// Failed counts handler attempts that returned an error or panicked.
	Failed int64 `json:"failed"`
	// InFlight counts messages being handled now.
	InFlight int64 `json:"in_flight"`
	// LastError is the error of the latest failed attempt.
	LastError string `json:"last_error,omitempty"`
	// LastMessageAt is when the latest message arrived; zero if none.
	LastMessageAt time.Time `json:"last_message_at"`
}

type consumer struct {
	name, topic string
	model       string // when set, messages of another model are acked unseen (HandleModel)
	fn          HandlerFunc
	handle      message.HandlerFunc // fn wrapped in the chain, for the router and Retry
	wantRunning bool
	state       control.State
	handler     *message.Handler
	sub         message.Subscriber
	ctl         sync.Mutex      // serializes StopConsumer and StartConsumer
	stopping    context.Context // cancelled when Shutdown starts
	cancelled   context.Context // cancelled when Shutdown cancels the handlers
	drained     *atomic.Bool    // the bus's: set once Shutdown saw the router closed
	traced      bool            // the chain traces: the handler's ctx carries the attempt's span
	// retry (the consumer's policy: its limit and backoff) and scheduledHandle run
	// the consumer's retries from the store (scheduler.go).
	retry           middleware.RetryConfig
	scheduledHandle message.HandlerFunc

	processed, failed, inFlight atomic.Int64
	lastMessage                 atomic.Int64
	lastErrMu                   sync.Mutex
	lastErr                     string
}

// Handle registers fn as the consumer name of topic. Every consumer receives every
// message of its topic, and each consumed message becomes one ModelEvent row per
// consumer. The handling chain, outermost first: poison queue → recording → retry →
// timeout → panic recovery → fn (see middleware.Chain). Consumers can be added before or while the bus runs;
// name must be unique and stable (brokers use it for the consumer group).
func (b *Bus) Handle(name, topic string, fn HandlerFunc) error {
	return b.handle(name, topic, "", fn)
}

// HandleWith is Handle with the consumer's own options (retries.go): scheduled or
// inline retries, idempotency.
func (b *Bus) HandleWith(name, topic string, fn HandlerFunc, opts ConsumerOptions) error {
	return b.handleWith(name, topic, "", fn, opts)
}

// handle is Handle of a consumer that, when model is not empty, receives only messages
// of that model (or of none).
func (b *Bus) handle(name, topic, model string, fn HandlerFunc) error {
	return b.handleWith(name, topic, model, fn, ConsumerOptions{})
}

// handleWith is handle with the consumer's options.
func (b *Bus) handleWith(name, topic, model string, fn HandlerFunc, opts ConsumerOptions) error {
	if name == "" || len(name) > 191 {
		return fmt.Errorf("eventbus: handle: consumer name must be 1 to 191 characters, got %q", name)
	}
	if topic == "" {
		return fmt.Errorf("eventbus: handle %s: empty topic", name)
	}
	if fn == nil {
		return fmt.Errorf("eventbus: handle %s: nil handler", name)
	}
	chain := b.chain
	chain.HandlerRecovers = true // attempt recovers
	if b.tracer != nil {
		chain.Trace = b.tracer.Consumer(name, topic)
	}
	cc, err := b.prepareChain(&chain, name, opts)
	if err != nil {
		return fmt.Errorf("eventbus: handle %s: %w", name, err)
	}
	mw, err := chain.Middleware()
	if err != nil {
		return fmt.Errorf("eventbus: handle %s: %w", name, err)
	}
	c := &consumer{name: name, topic: topic, model: model, fn: fn, wantRunning: true, state: control.Pending, stopping: b.stopping, cancelled: b.cancelled, drained: &b.drained, traced: b.tracer != nil}
	c.handle = mw(c.attempt)
	c.retry = cc.schedule.Retry
	if c.scheduledHandle, err = b.storeRunChain(c, cc, chain.Trace); err != nil {
		return fmt.Errorf("eventbus: handle %s: %w", name, err)
	}

	c.ctl.Lock() // no StartConsumer or StopConsumer of c before it is subscribed
	defer c.ctl.Unlock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	if _, dup := b.consumers[name]; dup {
		b.mu.Unlock()
		return fmt.Errorf("eventbus: handle: consumer %q already registered", name)
	}
	b.consumers[name] = c
	b.order = append(b.order, name)
	started := b.started
	b.mu.Unlock()
	if !started {
		return nil
	}
	if err := b.subscribe(c); err != nil {
		b.mu.Lock()
		delete(b.consumers, name)
		if i := slices.Index(b.order, name); i >= 0 {
			b.order = slices.Delete(b.order, i, i+1)
		}
		b.mu.Unlock()
		return err
	}
	return nil
}

// attempt runs the user's handler once, counting the outcome.
func (c *consumer) attempt(msg *message.Message) ([]*message.Message, error) {
	var ctx context.Context
	d, _ := msg.Context().Value(deliveryKey{}).(*delivery)
	if d != nil {
		d.attempts++
		ctx = d // ends only when Shutdown cancels handlers, with the correlation id: made once per delivery by routed
	} else { // not through the router: a retry from the store
		// A delivery of its own: the message's values and the correlation id, ending
		// only when Shutdown cancels the handlers still running, as a routed one.
		ctx = &delivery{parent: msg.Context(), c: c, msg: msg, corr: msg.Metadata.Get(modelevent.MetadataCorrelationID), attempts: 1}
	}
	if dl, ok := attemptDeadline(msg.Context(), d); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl) // on d: registers through d.AfterFunc, no goroutine
		defer cancel()
	}
	if d != nil && c.traced {
		ctx = tracing.ContextWithSpanOf(ctx, msg.Context())
	}
	if reason := msg.Metadata.Get(modelevent.MetadataDecodeError); reason != "" {
		err := middleware.Permanent(fmt.Errorf("message %s could not be decoded: %s", msg.UUID, reason))
		c.fail(err.Error())
		return nil, err
	}
	err := c.run(ctx, msg)
	if err != nil {
		c.fail(err.Error())
		if d != nil {
			d.link() // the retry middleware may wait now: let Close end that wait
		}
	}
	return nil, err
}

// attemptDeadline is the earliest deadline of the attempt's message context (the chain's
// timeout) and of the context the router gave the delivery.
func attemptDeadline(ctx context.Context, d *delivery) (time.Time, bool) {
	dl, ok := ctx.Deadline()
	if d != nil {
		if pd, pok := d.parent.Deadline(); pok && (!ok || pd.Before(dl)) {
			dl, ok = pd, true
		}
	}
	return dl, ok
}

// run calls the user's handler; a panic becomes an error with the stack, as Watermill's
// Recoverer makes it (the chain has none: see Chain.HandlerRecovers).
func (c *consumer) run(ctx context.Context, msg *message.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = wmmiddleware.RecoveredPanicError{V: r, Stacktrace: string(debug.Stack())}
		}
	}()
	return c.fn(ctx, msg)
}

func (c *consumer) fail(text string) {
	c.failed.Add(1)
	c.lastErrMu.Lock()
	c.lastErr = text
	c.lastErrMu.Unlock()
}

// routed is the handler given to the router: the chain plus delivery counters.
func (c *consumer) routed(msg *message.Message) ([]*message.Message, error) {
	if only := msg.Metadata.Get(modelevent.MetadataConsumer); only != "" && only != c.name {
		return nil, nil // redriven for another consumer
	}
	if c.model != "" {
		if m := msg.Metadata.Get(modelevent.MetadataModel); m != "" && m != c.model {
			return nil, nil // another model on the topic: not this consumer's
		}
	}
	c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	if c.drained.Load() {
		// The router handed this over as it closed, and Shutdown has seen no handler
		// running since: refused, it runs on its redelivery (shutdown.go). Wrapping
		// context.Canceled keeps Watermill from logging it as a handler's error.
		return nil, fmt.Errorf("%w: consumer %s: the bus is shutting down: %w", middleware.ErrAborted, c.name, context.Canceled)
	}
	c.lastMessage.Store(time.Now().UnixNano())
	d := c.newDelivery(msg)
	defer d.done()
	msg.SetContext(d.ctx)
	out, err := c.handle(msg)
	if err == nil {
		c.processed.Add(1)
	}
	return out, err
}

type deliveryKey struct{}

// delivery is one delivery of a message to a consumer. It is the context attempts run
// in: the message's values and the correlation id, cancelled only by Shutdown's second
// phase (running attempts finish while Shutdown waits for them). It answers the
// message context's values without context.WithoutCancel, whose Value allocates on
// every look-up (WithoutCancel's Value boxes its context each time, and a delivery
// looks up the handler name and topic through it). ctx, the context the chain runs in,
// is cancelled when the router's context of the message ends or Shutdown starts, so
// that a message waiting between retries is nacked at once, not poisoned. It learns of
// those two only after an attempt failed (link): a delivery whose first attempt
// succeeds, the common case, costs no registration with either.
type delivery struct {
	parent   context.Context
	corr     string
	c        *consumer
	ctx      context.Context
	cancel   context.CancelFunc
	stops    [2]func() bool // unregister from parent and c.stopping, once linked
	msg      *message.Message
	attempts int // runs of the handler so far, this one included
}

func (c *consumer) newDelivery(msg *message.Message) *delivery {
	d := &delivery{parent: msg.Context(), c: c, msg: msg, corr: msg.Metadata.Get(modelevent.MetadataCorrelationID)}
	d.ctx, d.cancel = context.WithCancel(chainContext{d})
	return d
}

// Deadline returns no deadline: only Shutdown cancels a delivery.
func (d *delivery) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done is closed when Shutdown cancels the handlers still running.
func (d *delivery) Done() <-chan struct{} { return d.c.cancelled.Done() }

// Err is context.Canceled once Shutdown cancelled the handlers still running.
func (d *delivery) Err() error { return d.c.cancelled.Err() }

// AfterFunc lets contexts derived from d (an attempt's deadline) end with it without a
// goroutine each: package context uses this method when a parent has it.
func (d *delivery) AfterFunc(f func()) (stop func() bool) { return context.AfterFunc(d.c.cancelled, f) }

// chainContext is d as the parent of the chain's context: its values without its
// cancellation, which the chain learns of through link instead.
type chainContext struct{ *delivery }

func (chainContext) Done() <-chan struct{} { return nil }
func (chainContext) Err() error            { return nil }

// Value answers the correlation id (CorrelationIDFromContext) and the delivery itself;
// every other key is the message context's, except the key under which package context
// finds a context's cancellation (a *int answered by a context): context.Cause of a
// delivery is nil, as of context.WithoutCancel's.
func (d *delivery) Value(key any) any {
	switch key.(type) {
	case correlationKey:
		if d.corr != "" {
			return d.corr
		}
	case deliveryKey:
		return d
	case *int:
		v := d.parent.Value(key)
		if _, isCtx := v.(context.Context); isCtx {
			return nil
		}
		return v
	}
	return d.parent.Value(key)
}

// link makes ctx end with the router's context of the message and with Close, from now
// on and at once if either has already ended.
func (d *delivery) link() {
	if d.stops[0] != nil {
		return
	}
	d.stops[0] = context.AfterFunc(d.parent, d.cancel)
	d.stops[1] = context.AfterFunc(d.c.stopping, d.cancel)
	if d.parent.Err() != nil || d.c.stopping.Err() != nil {
		d.cancel() // now, not from AfterFunc's goroutine: the chain checks at once
	}
}

func (d *delivery) done() {
	if d.stops[0] != nil {
		d.stops[0]()
		d.stops[1]()
	}
	d.cancel()
}

// addToRouter asks the backend for c's subscriber and adds c's handler to the router;
// c.ctl is held, b.mu is not: a backend may dial (NATS connects per subscriber), and
// Publish, Consumers and the other consumers must not wait for it.
func (b *Bus) addToRouter(c *consumer) error {
	sub, err := b.backend.Subscriber(c.name)
	if err != nil {
		return fmt.Errorf("eventbus: subscriber for consumer %s: %w", c.name, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		_ = sub.Close()
		return ErrClosed
	}
	c.sub = sub
	c.handler = b.router.AddHandler(c.name, c.topic, sub, "", disabledPublisher{}, c.routed)
	return nil
}

// subscribe adds c to the router of a started bus and, once the router runs, runs its
// handler (Run runs the handlers added before); c.ctl is held, b.mu is not.
func (b *Bus) subscribe(c *consumer) error {
	if err := b.addToRouter(c); err != nil {
		return err
	}
	select {
	case <-b.router.Running():
		if err := b.router.RunHandlers(b.runCtx); err != nil { // subscribes: I/O, without b.mu
			return fmt.Errorf("eventbus: start consumer %s: %w", c.name, err)
		}
		b.mu.Lock()
		if c.handler != nil {
			c.state = control.Running
		}
		b.mu.Unlock()
	default: // Run runs it, and marks it running
	}
	return nil
}

// Consumers lists the consumers in the order they were registered.
func (b *Bus) Consumers() []ConsumerInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]ConsumerInfo, 0, len(b.order))
	for _, name := range b.order {
		out = append(out, b.consumers[name].info())
	}
	return out
}

// Consumer returns one consumer's info, or an error wrapping control.ErrUnknownConsumer.
func (b *Bus) Consumer(name string) (ConsumerInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.consumers[name]
	if !ok {
		return ConsumerInfo{}, b.unknownConsumer(name)
	}
	return c.info(), nil
}

func (b *Bus) lookupConsumer(name string) (*consumer, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.consumers[name]
	if !ok {
		return nil, b.unknownConsumer(name)
	}
	return c, nil
}

func (b *Bus) unknownConsumer(name string) error {
	names := append([]string(nil), b.order...)
	sort.Strings(names)
	return fmt.Errorf("%w %q in this process (known: %v)", control.ErrUnknownConsumer, name, names)
}

func (c *consumer) info() ConsumerInfo {
	c.lastErrMu.Lock()
	lastErr := c.lastErr
	c.lastErrMu.Unlock()
	var last time.Time
	if n := c.lastMessage.Load(); n != 0 {
		last = time.Unix(0, n)
	}
	return ConsumerInfo{
		Name: c.name, Topic: c.topic, State: c.state,
		Processed: c.processed.Load(), Failed: c.failed.Load(), InFlight: c.inFlight.Load(),
		LastError: lastErr, LastMessageAt: last,
	}
}

// StopConsumer stops one consumer in this process: it stops taking messages, its
// in-flight messages finish (bounded by ctx), and its subscription is closed. Other
// consumers and the bus keep running; messages for it wait in the broker where the
// broker keeps them. The stop is recorded as this process's desired state in the control
// plane, so it lasts until StartConsumer (or the console) starts it again. Stopping a
// stopped consumer does nothing.
func (b *Bus) StopConsumer(ctx context.Context, name string) error {
	return b.setState(ctx, name, false)
}

// StartConsumer starts a stopped consumer of this process again with a new
// subscription, and records that as its desired state. Starting a running consumer
// does nothing.
func (b *Bus) StartConsumer(ctx context.Context, name string) error {
	return b.setState(ctx, name, true)
}

func (b *Bus) setState(ctx context.Context, name string, run bool) error {
	if _, err := b.lookupConsumer(name); err != nil {
		return err
	}
	if b.ctl != nil {
		state := control.Stopped
		if run {
			state = control.Running
		}
		if err := b.ctl.SetDesired(ctx, name, b.processID, state); err != nil {
			return err
		}
	}
	if run {
		return b.startConsumer(ctx, name)
	}
	return b.stopConsumer(ctx, name)
}

func (b *Bus) stopConsumer(ctx context.Context, name string) error {
	c, err := b.lookupConsumer(name)
	if err != nil {
		return err
	}
	c.ctl.Lock()
	defer c.ctl.Unlock()
	b.mu.Lock()
	c.wantRunning = false
	h, sub := c.handler, c.sub
	c.handler, c.sub = nil, nil
	if !b.started || h == nil {
		c.state = control.Stopped
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()

	h.Stop()
	select {
	case <-h.Stopped():
	case <-ctx.Done():
		return fmt.Errorf("eventbus: stop consumer %s: %w", name, ctx.Err())
	}
	for c.inFlight.Load() > 0 {
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("eventbus: stop consumer %s: %d messages still in flight: %w", name, c.inFlight.Load(), ctx.Err())
		}
	}
	err = sub.Close()
	b.mu.Lock()
	if c.handler == nil {
		c.state = control.Stopped
	}
	b.mu.Unlock()
	b.log.Info("eventbus: consumer stopped", "handler", name)
	if err != nil {
		return fmt.Errorf("eventbus: stop consumer %s: close subscriber: %w", name, err)
	}
	return nil
}

func (b *Bus) startConsumer(ctx context.Context, name string) error {
	c, err := b.lookupConsumer(name)
	if err != nil {
		return err
	}
	c.ctl.Lock()
	defer c.ctl.Unlock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	c.wantRunning = true
	if !b.started {
		c.state = control.Pending
		b.mu.Unlock()
		return nil
	}
	if c.handler != nil {
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	if err := b.subscribe(c); err != nil {
		return err
	}
	b.log.Info("eventbus: consumer started", "handler", name)
	return nil
}

// disabledPublisher refuses messages returned by bus handlers (they return none).
type disabledPublisher struct{}

func (disabledPublisher) Publish(topic string, _ ...*message.Message) error {
	return errors.New("eventbus: handlers publish with Bus.Publish, not by returning messages")
}
func (disabledPublisher) Close() error { return nil }

// keeper is a subscriber that never delivers; its handler keeps the Watermill router
// running while every consumer is stopped (the router ends when its last handler does).
type keeper struct {
	once sync.Once
	done chan struct{}
}

func newKeeper() *keeper { return &keeper{done: make(chan struct{})} }

func (k *keeper) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	ch := make(chan *message.Message)
	go func() {
		select {
		case <-ctx.Done():
		case <-k.done:
		}
		close(ch)
	}()
	return ch, nil
}

func (k *keeper) Close() error {
	k.once.Do(func() { close(k.done) })
	return nil
}

// wantRunningNow reads c.wantRunning under b.mu.
func (c *consumer) wantRunningNow(b *Bus) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return c.wantRunning
}
