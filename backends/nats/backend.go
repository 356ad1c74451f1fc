package nats

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	natsgo "github.com/nats-io/nats.go"

	"github.com/go-eventbus/eventbus/backends/nats/internal/embedlink"
	"github.com/go-eventbus/eventbus/bus"
)

func init() {
	bus.Register("nats", func(ctx context.Context, settings map[string]any, opts bus.BackendOptions) (bus.Backend, error) {
		var cfg Config
		if err := bus.DecodeSettings(settings, &cfg); err != nil {
			return nil, err
		}
		return New(ctx, cfg, opts.WatermillLogger)
	})
}

// ErrClosed is returned by a closed Backend, its publisher and its subscribers.
var ErrClosed = errors.New("nats: backend closed")

// Backend is the NATS JetStream backend: a watermill-nats publisher on one connection
// and, per consumer, a watermill-nats subscriber on its own connection. It is safe for
// concurrent use.
type Backend struct {
	cfg      Config
	logger   watermill.LoggerAdapter
	natsOpts []natsgo.Option
	urls     []string
	embedded embedlink.Server // nil unless cfg.Embedded

	conn *natsgo.Conn            // the publisher's connection
	js   natsgo.JetStreamContext // on conn: streams, backlog
	pub  *publisher

	streams sync.Map // subject → stream name, known to exist

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
}

var (
	_ bus.Backend    = (*Backend)(nil)
	_ bus.Backlogger = (*Backend)(nil)
)

// New validates cfg, starts the embedded server if cfg.Embedded, connects to NATS and
// checks that JetStream is enabled, all within ctx and cfg.ConnectTimeout per step. A
// nil logger discards logs. Close releases what New started.
func New(ctx context.Context, cfg Config, logger watermill.LoggerAdapter) (*Backend, error) {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Backend{cfg: cfg, logger: logger, subs: map[*subscriber]struct{}{}}
	if !cfg.Embedded {
		var err error
		if b.urls, err = parseURLs(cfg.URL); err != nil {
			return nil, err
		}
	}
	var err error
	if b.natsOpts, err = connOptions(cfg, logger); err != nil {
		return nil, err
	}
	if cfg.Embedded {
		if b.embedded, err = startEmbedded(cfg, logger); err != nil {
			return nil, err
		}
	}
	fail := func(err error) (*Backend, error) {
		if b.conn != nil {
			b.conn.Close()
		}
		if b.embedded != nil {
			b.embedded.Shutdown()
		}
		return nil, err
	}
	if b.conn, err = b.connect(ctx, "publisher"); err != nil {
		return fail(err)
	}
	if b.js, err = b.conn.JetStream(); err != nil {
		return fail(fmt.Errorf("jetstream: %w", err))
	}
	if err := b.checkJetStream(ctx, b.js); err != nil {
		return fail(err)
	}
	wm, err := wmnats.NewPublisherWithNatsConn(b.conn, wmnats.PublisherPublishConfig{
		Marshaler:         &marshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream: wmnats.JetStreamConfig{
			AutoProvision: false, // the backend provisions, once per topic
			TrackMsgId:    cfg.trackMsgID(),
		},
	}, logger)
	if err != nil {
		return fail(fmt.Errorf("publisher: %w", err))
	}
	b.pub = &publisher{b: b, wm: wm}
	return b, nil
}

// Config returns the backend's configuration with defaults applied.
func (b *Backend) Config() Config { return b.cfg }

// URL returns the server URLs the backend connects to (the embedded server's when
// embedded), passwords hidden.
func (b *Backend) URL() string {
	if b.embedded != nil {
		return b.embedded.URL()
	}
	return redactedURLs(b.urls)
}

// Publisher returns the publisher of every topic. Publish returns once JetStream has
// stored every message (in order), or the first error; a message published again with
// the same UUID within the stream's duplicate window is stored once (track_msg_id).
func (b *Backend) Publisher() message.Publisher { return b.pub }

// Subscriber returns a new subscriber for consumer on its own connection. It reads
// every topic through the consumer's durable JetStream consumer and queue group, so
// every consumer gets every message and the processes running one consumer share its
// messages; messages published while no process runs it wait in the stream.
func (b *Backend) Subscriber(consumer string) (message.Subscriber, error) {
	if consumer == "" {
		return nil, errors.New("nats: subscriber needs a consumer name")
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.ConnectTimeout)
	defer cancel()
	conn, err := b.connect(ctx, "consumer "+consumer)
	if err != nil {
		return nil, fmt.Errorf("nats: subscriber %s: %w", consumer, err)
	}
	s, err := newSubscriber(b, consumer, conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("nats: subscriber %s: %w", consumer, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		_ = s.wm.Close()
		return nil, ErrClosed
	}
	b.subs[s] = struct{}{}
	return s, nil
}

func (b *Backend) forget(s *subscriber) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// Close closes the subscribers still open, the publisher's connection (after
// flushing it) and, when embedded, shuts the server down; its files stay in
// store_dir. It is idempotent.
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
	if b.embedded != nil {
		b.embedded.Shutdown()
	}
	return errors.Join(errs...)
}

func (b *Backend) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}
