package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"

	"github.com/go-eventbus/eventbus/backends/memory"
	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/internal/wmlog"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
	"github.com/go-eventbus/eventbus/tracing"
)

func init() {
	Register("memory", func(ctx context.Context, settings map[string]any, opts BackendOptions) (Backend, error) {
		var cfg memory.Config
		if err := DecodeSettings(settings, &cfg); err != nil {
			return nil, err
		}
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		return memory.New(cfg, opts.WatermillLogger), nil
	})
}

// Errors returned by the bus.
var (
	// ErrClosed is returned by calls on a closed Bus.
	ErrClosed = errors.New("eventbus: bus closed")
	// ErrPayloadTooLarge is returned by Publish for a payload over MaxPayloadBytes.
	ErrPayloadTooLarge = errors.New("eventbus: payload too large")
)

// HandlerFunc handles one consumed message. ctx is the message's context: it carries
// the handler timeout and the correlation id (Publish with it to continue the flow). A
// nil error acks the message; an error retries it and finally poisons it. Wrap an error
// with middleware.Permanent to skip the retries. A panic is an error like any other.
type HandlerFunc func(ctx context.Context, msg *message.Message) error

// Bus publishes and consumes events through a Backend, records every event as a
// ModelEvent, retries failures and poisons what still fails, and lets consumers be
// stopped and started while it runs. Its methods are safe for concurrent use.
type Bus struct {
	cfg       Config
	log       *slog.Logger
	wlog      watermill.LoggerAdapter
	backend   Backend
	store     modelevent.Store
	ownsStore bool
	rec       *middleware.Recorder
	router    *message.Router
	publisher message.Publisher
	chain     middleware.Chain
	tracer    *tracing.Tracer // nil: no tracing (Config.TracerProvider nil)

	metricsState // metrics.go

	mu        sync.Mutex
	consumers map[string]*consumer
	order     []string
	runCtx    context.Context
	running   chan struct{}
	started   bool
	closed    bool

	processID     string
	ctl           *control.Store
	startedAt     time.Time
	controlCancel context.CancelFunc
	controlDone   chan struct{}

	outbox    *Outbox
	relay     OutboxRelay
	relayDone chan struct{}

	brokerOutage   episode       // outages.go
	brokerWatching chan struct{} // closed when watchBroker returned; nil: not started
	controlOutage  episode

	sched scheduler // scheduler.go

	retentionCancel context.CancelFunc
	retentionDone   chan struct{}

	stopping     context.Context // cancelled when Shutdown starts
	stopDelivery context.CancelFunc
	cancelled    context.Context // cancelled when Shutdown's context ends: handlers' contexts end
	cancelWork   context.CancelFunc
	pubs         gate        // publishes to the backend in progress; closed once the handlers returned
	drained      atomic.Bool // set by Shutdown once the router closed (handlersWait.wait): a delivery starting later is refused

	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
}

// New builds a Bus from cfg: it validates the config, opens the store (applying its
// migrations unless cfg.Store.ManualMigrate), connects the backend and starts the
// recorder. Nothing is consumed before Run. Close releases what New opened.
func New(ctx context.Context, cfg Config) (*Bus, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bus{
		cfg:       cfg,
		log:       log,
		wlog:      wmlog.New(log),
		consumers: map[string]*consumer{},
		running:   make(chan struct{}),
		done:      make(chan struct{}),
	}
	b.stopping, b.stopDelivery = context.WithCancel(context.Background())
	b.cancelled, b.cancelWork = context.WithCancel(context.Background())
	b.brokerOutage.what = "broker (" + cfg.Backend + ")"
	b.controlOutage.what = "control plane store"
	var err error
	defer func() {
		if err != nil {
			b.release(time.Now().Add(b.cfg.ShutdownTimeout))
		}
	}()

	b.store = cfg.EventStore
	if b.store == nil {
		var s *modelevent.SQLStore
		s, err = modelevent.Open(ctx, cfg.Store.Driver, cfg.Store.DSN)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		b.store, b.ownsStore = s, true
		if !cfg.Store.ManualMigrate {
			if err = s.Migrate(ctx); err != nil {
				return nil, fmt.Errorf("store: %w", err)
			}
		}
	}

	b.setupControl()

	b.backend = cfg.Broker
	if b.backend == nil {
		b.backend, err = OpenBackend(ctx, cfg.Backend, cfg.BackendSettings, BackendOptions{Logger: log, WatermillLogger: b.wlog})
		if err != nil {
			return nil, err
		}
	}
	b.publisher = b.backend.Publisher()
	if err = b.setupMetrics(); err != nil {
		return nil, err
	}

	b.rec, err = middleware.NewRecorder(b.store, middleware.RecorderConfig{
		Mode:          cfg.Record.Mode,
		BatchSize:     cfg.Record.BatchSize,
		FlushInterval: cfg.Record.FlushInterval,
		CommitDelay:   cfg.Record.CommitDelay,
		ProducedMode:  cfg.Record.ProducedMode,
		WriteTimeout:  cfg.Record.WriteTimeout,
		QueueSize:     cfg.Record.QueueSize,
		Writers:       cfg.Record.Writers,
		Backend:       cfg.Backend,
		Logger:        log,
		Observer:      b.metrics,
	})
	if err != nil {
		return nil, err
	}
	b.chain = middleware.Chain{
		Recorder:        b.rec,
		Retry:           cfg.Retry,
		Timeout:         cfg.HandlerTimeout,
		PoisonPublisher: gatedPublisher{b, b.publisher},
		PoisonTopic:     cfg.PoisonTopic,
	}
	if b.tracer = tracing.New(cfg.TracerProvider, cfg.Backend); b.tracer != nil {
		b.chain.PoisonPublisher = gatedPublisher{b, b.tracer.Publisher(b.publisher)}
	}
	b.router, err = message.NewRouter(message.RouterConfig{CloseTimeout: cfg.ShutdownTimeout}, b.wlog)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	b.instrument()
	if cfg.Outbox.Enabled {
		if b.outbox, err = NewOutbox(b, cfg.Outbox); err != nil {
			return nil, err
		}
		if b.relay, err = b.outbox.NewRelay(ctx); err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
	}
	b.startMetricsPoller()
	return b, nil
}

// Config returns the bus's configuration with defaults applied.
func (b *Bus) Config() Config { return b.cfg }

// Store returns the ModelEvent store.
func (b *Bus) Store() modelevent.Store { return b.store }

// Backend returns the backend.
func (b *Bus) Backend() Backend { return b.backend }

// Publisher returns the backend's publisher, unrecorded: publishing through it bypasses
// the ModelEvents. Use Publish unless that is what you want.
func (b *Bus) Publisher() message.Publisher { return b.publisher }

// Router returns the Watermill router the bus runs. Raw Watermill handlers and
// middleware can be added to it before Run; router-level middleware wraps the bus's own
// chain. Do not Close it: Close the bus.
func (b *Bus) Router() *message.Router { return b.router }

// OnChange registers a listener called after every ModelEvent change is stored (as
// django-eventbus's signals are sent). Listeners run on the recorder's goroutine and must return quickly.
func (b *Bus) OnChange(l middleware.Listener) { b.rec.OnChange(l) }

// Running is closed once Run has subscribed every consumer.
func (b *Bus) Running() <-chan struct{} { return b.running }

// Run subscribes every running consumer and handles messages until ctx is done or Close
// is called; then it shuts down gracefully (see Close) and returns. It returns an error
// if a subscription fails or the bus was already run.
func (b *Bus) Run(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	if b.started {
		b.mu.Unlock()
		return errors.New("eventbus: bus is already running")
	}
	b.started = true
	b.runCtx = context.WithoutCancel(ctx)
	b.mu.Unlock()
	b.applyDesiredBeforeRun(ctx)
	// The keeper keeps the router alive when every consumer is stopped.
	b.router.AddConsumerHandler("eventbus.keeper", "eventbus.keeper", newKeeper(), func(*message.Message) error { return nil })
	b.mu.Lock()
	var start []*consumer
	for _, name := range b.order {
		if c := b.consumers[name]; c.wantRunning {
			start = append(start, c)
		}
	}
	b.mu.Unlock()
	for _, c := range start { // backends may dial: without b.mu
		c.ctl.Lock()
		err := error(nil)
		if c.wantRunningNow(b) && c.handler == nil {
			err = b.addToRouter(c)
		}
		c.ctl.Unlock()
		if err != nil {
			_ = b.Close()
			return err
		}
	}

	runErr := make(chan error, 1)
	go func() { runErr <- b.router.Run(b.runCtx) }()
	select {
	case <-b.router.Running():
		// Consumers added by Handle while the router was starting: RunHandlers is
		// idempotent.
		if err := b.router.RunHandlers(b.runCtx); err != nil {
			_ = b.Close()
			return fmt.Errorf("eventbus: run: %w", err)
		}
		b.mu.Lock()
		for _, c := range b.consumers {
			if c.handler != nil {
				c.state = control.Running
			}
		}
		b.mu.Unlock()
		b.startedAt = time.Now()
		if b.ctl != nil {
			cctx, cancel := context.WithCancel(b.runCtx)
			b.controlCancel, b.controlDone = cancel, make(chan struct{})
			go b.runControl(cctx)
		}
		b.startRetention()
		b.startScheduler(b.stopping)
		b.brokerWatching = make(chan struct{})
		go b.watchBroker(b.stopping, b.brokerWatching)
		if b.relay != nil {
			b.relayDone = make(chan struct{})
			go func() {
				defer close(b.relayDone)
				if err := b.relay.Run(b.runCtx); err != nil {
					b.log.Error("eventbus: outbox relay stopped", "error", err)
				}
			}()
		}
		close(b.running)
		b.mu.Lock()
		n := len(b.order)
		b.mu.Unlock()
		b.log.Info("eventbus: running", "backend", b.cfg.Backend, "consumers", n, "process", b.processID)
	case err := <-runErr:
		_ = b.Close()
		if err == nil {
			err = errors.New("router stopped")
		}
		return fmt.Errorf("eventbus: run: %w", err)
	}

	select {
	case <-ctx.Done():
		return b.Close()
	case err := <-runErr:
		closeErr := b.Close()
		if err != nil {
			return fmt.Errorf("eventbus: run: %w", err)
		}
		return closeErr
	case <-b.done:
		return b.closeErr
	}
}

// release flushes the recorder and closes the backend and the owned store. The flush
// gets what is left until deadline, and at least a tenth of ShutdownTimeout, so rows of
// handlers that finished just in time are still written.
func (b *Bus) release(deadline time.Time) error {
	var errs []error
	// The relay publishes through the backend and records through the recorder: it
	// stops first.
	if b.relay != nil {
		if err := b.relay.Close(); err != nil {
			errs = append(errs, fmt.Errorf("outbox relay: %w", err))
		}
		if b.relayDone != nil {
			<-b.relayDone
		}
	}
	if b.outbox != nil {
		if err := b.outbox.Close(); err != nil {
			errs = append(errs, fmt.Errorf("outbox: %w", err))
		}
	}
	if b.metricsDone != nil {
		<-b.metricsDone // Close cancelled b.stopping
	}
	if b.rec != nil {
		if least := time.Now().Add(b.cfg.ShutdownTimeout / 10); deadline.Before(least) {
			deadline = least
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		if err := b.rec.Close(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	if b.backend != nil && b.cfg.Broker == nil {
		if err := b.backend.Close(); err != nil {
			errs = append(errs, fmt.Errorf("backend: %w", err))
		}
	}
	if b.store != nil && b.ownsStore {
		if err := b.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Publish records each message as a produced ModelEvent and publishes it to topic. A
// message without UUID gets one; without correlation id it takes the one in ctx (set
// for handlers) or its own UUID. Publish returns after the backend accepted the
// messages and, when produced rows are durable (record.mode durable, unless
// record.produced_mode is buffered), their rows are stored: one store commit for the
// call, however many messages it holds (shared with concurrent calls: group commit).
// A payload over MaxPayloadBytes, or a ctx already done, is refused before anything is
// sent; each message's context is set to ctx, which the backend's publisher may honour
// (the memory backend's wait for room in a consumer's backlog ends with it). With
// Config.TracerProvider set, the broker's publish is a "publish <topic>" span, child of
// ctx's span, whose context is injected into every message's metadata (package tracing).
func (b *Bus) Publish(ctx context.Context, topic string, msgs ...*message.Message) error {
	if topic == "" {
		return errors.New("eventbus: publish: empty topic")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("eventbus: publish %q: nothing sent: %w", topic, err)
	}
	if err := b.prepare(ctx, msgs); err != nil {
		return fmt.Errorf("eventbus: publish %q: %w", topic, err)
	}
	return b.send(ctx, topic, msgs, nil)
}

// prepare readies msgs for publishing: a UUID, the correlation id (from ctx, else the
// message's own UUID), and the payload limit.
func (b *Bus) prepare(ctx context.Context, msgs []*message.Message) error {
	corr := CorrelationIDFromContext(ctx)
	for _, m := range msgs {
		if m == nil {
			return errors.New("nil message")
		}
		if m.UUID == "" {
			m.UUID = NewUUID()
		}
		if len(m.Payload) > b.cfg.MaxPayloadBytes {
			return fmt.Errorf("message %s payload is %d bytes, over max_payload_bytes %d: %w",
				m.UUID, len(m.Payload), b.cfg.MaxPayloadBytes, ErrPayloadTooLarge)
		}
		if m.Metadata == nil {
			m.Metadata = message.Metadata{}
		}
		if m.Metadata.Get(modelevent.MetadataCorrelationID) == "" {
			c := corr
			if c == "" {
				c = m.UUID
			}
			m.Metadata.Set(modelevent.MetadataCorrelationID, c)
		}
	}
	return nil
}

// publish publishes and records msgs, returning the ids of their produced rows.
func (b *Bus) publish(ctx context.Context, topic string, msgs ...*message.Message) ([]string, error) {
	ids := make([]string, len(msgs))
	err := b.send(ctx, topic, msgs, ids)
	return ids, err
}

// send publishes and records msgs; when ids is not nil, ids[i] receives the id of the
// produced row of msgs[i].
func (b *Bus) send(ctx context.Context, topic string, msgs []*message.Message, ids []string) error {
	if !b.pubs.enter() {
		return fmt.Errorf("eventbus: publish %q: %w", topic, ErrClosed)
	}
	defer b.pubs.leave()
	var span trace.Span
	if b.tracer != nil {
		span = b.tracer.StartPublish(ctx, topic, msgs)
	}
	for _, m := range msgs {
		m.SetContext(ctx) // the backend's publisher gets ctx this way (a Watermill Publisher takes none)
	}
	start := time.Now()
	pubErr := b.publisher.Publish(topic, msgs...)
	if span != nil {
		tracing.End(span, pubErr)
	}
	recErr := b.rec.RecordPublished(context.Background(), topic, msgs, start, pubErr, ids) // recorded even when ctx ends; WriteTimeout bounds it
	if pubErr != nil {
		return errors.Join(fmt.Errorf("eventbus: publish %q: %w", topic, pubErr), recErr)
	}
	if recErr != nil {
		return fmt.Errorf("eventbus: publish %q: published, but %w", topic, recErr)
	}
	return nil
}

func (b *Bus) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

type correlationKey struct{}

// ContextWithCorrelationID returns ctx carrying a correlation id for Publish.
func ContextWithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationIDFromContext returns the correlation id carried by ctx, or "".
func CorrelationIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}
