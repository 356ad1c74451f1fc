package outbox

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/internal/wmlog"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// RecordFunc stores ModelEvent changes; the bus passes its recorder's RecordDurably, a
// test or a standalone relay a modelevent.Store's Write.
type RecordFunc func(ctx context.Context, changes ...modelevent.Change) error

// RelayOptions is what a Relay forwards to and records with.
type RelayOptions struct {
	// Publisher receives the forwarded messages: the bus backend's publisher (memory,
	// Kafka, NATS, AMQP, SQL). Required. The relay never closes it.
	Publisher message.Publisher
	// Record stores the produced ModelEvent of each forwarded message (status
	// published, one attempt), or of a failed attempt (status pending, the error). Nil
	// records nothing.
	Record RecordFunc
	// Backend names the backend in the produced rows, e.g. "kafka".
	Backend string
	// Logger receives the relay's logs; nil discards them.
	Logger *slog.Logger
}

// Relay moves the messages of an outbox table to the broker: Watermill's Forwarder
// reads the table through a watermill-sql subscriber, publishes each message to its
// destination topic, records its produced ModelEvent as published, and then deletes
// its row. Messages go out one at a time, in the table's order (commit order per
// object, see docs/outbox.md). Delivery is at least once: a relay stopped or killed
// after publishing a message and before deleting its row publishes it again when it
// runs next. A failed publish is retried, with a backoff from RetryInterval to
// MaxRetryInterval, until it succeeds or the relay stops; later messages wait, so the
// order holds. A Relay runs once: after Run returns or Close, make a new one.
type Relay struct {
	cfg  Config
	opts RelayOptions
	log  *slog.Logger
	sub  *wsql.Subscriber
	fwd  *forwarder.Forwarder

	closing   chan struct{}
	closeOnce sync.Once
	failures  atomic.Int64 // consecutive failed forwards
}

// NewRelay creates the outbox table of cfg in db if needed and returns a relay of it
// to opts.Publisher. db is the database of the outbox table (the one the
// application's transactions run in); the relay does not close it.
func NewRelay(ctx context.Context, db *stdsql.DB, cfg Config, opts RelayOptions) (*Relay, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	if db == nil {
		return nil, errors.New("outbox: relay: nil *sql.DB")
	}
	if opts.Publisher == nil {
		return nil, errors.New("outbox: relay: nil publisher")
	}
	if err := InitializeSchema(ctx, db, cfg); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wlog := wmlog.New(log)
	schema, offsets := newAdapters(cfg)
	var beginner wsql.Beginner = wsql.BeginnerFromStdSQL(db)
	if cfg.Dialect == modelevent.DialectSQLite {
		beginner = autocommit{db: db}
	}
	sub, err := wsql.NewSubscriber(beginner, wsql.SubscriberConfig{
		PollInterval: cfg.PollInterval,
		// The relay waits between attempts itself (with a backoff it can cut short);
		// the subscriber resends at once.
		ResendInterval: time.Millisecond,
		RetryInterval:  cfg.PollInterval,
		SchemaAdapter:  schema,
		OffsetsAdapter: offsets,
	}, wlog)
	if err != nil {
		return nil, fmt.Errorf("outbox: relay: %w", err)
	}
	r := &Relay{cfg: cfg, opts: opts, log: log, sub: sub, closing: make(chan struct{})}
	r.fwd, err = forwarder.NewForwarder(sub, recordingPublisher{r}, wlog, forwarder.Config{
		ForwarderTopic: cfg.Table,
		Middlewares:    []message.HandlerMiddleware{r.backoff},
		// A row that is not an envelope can never be forwarded: log it and move on
		// instead of blocking every later message.
		AckWhenCannotUnwrap: true,
	})
	if err != nil {
		_ = sub.Close()
		return nil, fmt.Errorf("outbox: relay: %w", err)
	}
	return r, nil
}

// Run forwards messages until ctx is done or Close is called, then stops: the message
// being forwarded is finished or left for the next run. It returns nil after a clean
// stop.
func (r *Relay) Run(ctx context.Context) error {
	r.log.Info("outbox: relay running", "table", r.cfg.Table, "dialect", r.cfg.Dialect, "backend", r.opts.Backend)
	if err := r.fwd.Run(ctx); err != nil {
		return fmt.Errorf("outbox: relay %s: %w", r.cfg.Table, err)
	}
	return nil
}

// Running is closed once Run reads the table.
func (r *Relay) Running() <-chan struct{} { return r.fwd.Running() }

// Close stops the relay and waits for Run to return. It is idempotent.
func (r *Relay) Close() error {
	var err error
	r.closeOnce.Do(func() {
		close(r.closing)
		err = errors.Join(r.fwd.Close(), r.sub.Close())
		r.log.Info("outbox: relay stopped", "table", r.cfg.Table)
	})
	return err
}

// backoff waits before returning the error of a failed forward (which the subscriber
// then retries), longer after every consecutive failure, and less if the relay stops.
func (r *Relay) backoff(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err == nil {
			r.failures.Store(0)
			return out, nil
		}
		failures := r.failures.Add(1)
		wait := r.cfg.RetryInterval
		for i := int64(1); i < failures && wait < r.cfg.MaxRetryInterval; i++ {
			wait *= 2
		}
		wait = min(wait, r.cfg.MaxRetryInterval)
		r.log.Warn("outbox: forward failed, retrying", "table", r.cfg.Table, "message_uuid", msg.UUID,
			"failures", failures, "wait", wait, "error", err)
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.closing:
		case <-msg.Context().Done():
		}
		return out, err
	}
}

// recordingPublisher publishes a forwarded message to the broker and records its
// produced ModelEvent: published after a success (the row PublishTx wrote goes from
// pending to published; without one it is created), pending with the error after a
// failure. Its Close does not close the broker's publisher.
type recordingPublisher struct{ r *Relay }

func (p recordingPublisher) Publish(topic string, msgs ...*message.Message) error {
	start := time.Now()
	err := p.r.opts.Publisher.Publish(topic, msgs...)
	if p.r.opts.Record != nil {
		changes := make([]modelevent.Change, len(msgs))
		for i, m := range msgs {
			changes[i] = p.r.producedChange(topic, m, start, err)
		}
		ctx := context.Background()
		if len(msgs) > 0 {
			ctx = context.WithoutCancel(msgs[0].Context())
		}
		if rerr := p.r.opts.Record(ctx, changes...); rerr != nil {
			// Not deleting the row is what keeps the record: it is published again.
			return errors.Join(err, fmt.Errorf("outbox: record %d produced events: %w", len(msgs), rerr))
		}
	}
	if err != nil {
		return fmt.Errorf("outbox: publish to %q: %w", topic, err)
	}
	return nil
}

func (recordingPublisher) Close() error { return nil }

// producedChange is the change that records msg, forwarded to topic by an attempt
// that started at start and failed with err (nil for a success).
func (r *Relay) producedChange(topic string, msg *message.Message, start time.Time, err error) modelevent.Change {
	now := time.Now()
	status, text := modelevent.StatusPublished, ""
	if err != nil {
		status, text = modelevent.StatusPending, err.Error()
	}
	md := maps.Clone(map[string]string(msg.Metadata))
	return modelevent.Change{
		Event: modelevent.ModelEvent{
			MessageUUID:   msg.UUID,
			Direction:     modelevent.Produced,
			Topic:         topic,
			Model:         md[modelevent.MetadataModel],
			ObjectID:      md[modelevent.MetadataObjectID],
			Change:        modelevent.ChangeType(md[modelevent.MetadataChange]),
			Backend:       r.opts.Backend,
			Payload:       msg.Payload,
			Metadata:      md,
			Status:        status,
			Attempts:      1,
			LastError:     text,
			CorrelationID: md[modelevent.MetadataCorrelationID],
			TraceID:       middleware.TraceIDOf(msg.Metadata),
			CreatedAt:     now,
			UpdatedAt:     now,
		},
		NewAttempts: []modelevent.Attempt{{StartedAt: start, Duration: now.Sub(start), Error: text}},
	}
}
