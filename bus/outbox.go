package bus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/modelevent"
	"github.com/go-eventbus/eventbus/outbox"
	"github.com/go-eventbus/eventbus/tracing"
)

// Where PublishTx writes the produced ModelEvent (OutboxConfig.Record).
const (
	// OutboxRecordTx writes the produced row, status pending, in the caller's
	// transaction; the relay marks it published. The store's tables must be in the
	// caller's database.
	OutboxRecordTx = "tx"
	// OutboxRecordRelay writes nothing but the outbox row in the caller's transaction;
	// the relay creates the produced row, published, when it forwards the message. For
	// a store in another database than the application's.
	OutboxRecordRelay = "relay"
)

// OutboxConfig configures the transactional outbox: the table PublishTx writes in the
// caller's transaction and the relay that forwards it to the backend. The zero value
// puts the outbox in the store's database, with the produced rows written in the
// transaction. It is the `outbox:` section of the configuration; the keys of
// outbox.Config (dialect, table, batch_size, poll_interval, retry_interval,
// max_retry_interval) are keys of that section.
type OutboxConfig struct {
	// Enabled makes New build the relay, which runs while the bus runs.
	Enabled bool `yaml:"enabled"`
	// DSN is where the relay reads the outbox table. Default: the store's database.
	DSN string `yaml:"dsn"`
	// Record is where the produced ModelEvent is written: tx (default when the outbox
	// is the store's database) or relay (default otherwise). See OutboxRecordTx.
	Record string `yaml:"record"`
	// Config is the outbox table and its relay. Its Dialect defaults to the store's.
	outbox.Config `yaml:",inline"`
}

// Outbox publishes messages inside the application's SQL transactions and relays them
// to the bus's backend. Its methods are safe for concurrent use.
type Outbox struct {
	b     *Bus
	cfg   OutboxConfig
	ocfg  outbox.Config
	store modelevent.SQLDatabase // the bus's store when it is kept in a SQL database
	txw   modelevent.TxWriter    // the bus's store, for record tx

	mu     sync.Mutex
	opened *modelevent.SQLStore // the relay's database when DSN is set
}

// NewOutbox returns the outbox of b configured by cfg. It opens nothing: the relay's
// database is opened by NewRelay. It fails when cfg cannot work with b's store (record
// tx with a store that is not a modelevent.SQLDatabase and TxWriter of the same
// dialect, or no DSN and no modelevent.SQLDatabase to take the database from). A store
// wrapping the SQL store works when it forwards those methods.
func NewOutbox(b *Bus, cfg OutboxConfig) (*Outbox, error) {
	if b == nil {
		return nil, errors.New("outbox: nil bus")
	}
	store, _ := b.store.(modelevent.SQLDatabase)
	txw, _ := b.store.(modelevent.TxWriter)
	if cfg.Dialect == "" && store != nil {
		cfg.Dialect = store.Dialect()
	}
	if cfg.DSN == "" && store == nil {
		return nil, errors.New("outbox.dsn: must be set when the store is not kept in a SQL database (a modelevent.SQLDatabase)")
	}
	if cfg.Record == "" {
		cfg.Record = OutboxRecordRelay
		if cfg.DSN == "" && store != nil && store.Dialect() == cfg.Dialect {
			cfg.Record = OutboxRecordTx
		}
	}
	switch cfg.Record {
	case OutboxRecordTx:
		if store == nil || txw == nil {
			return nil, errors.New("outbox.record: tx needs the bus's store to write in a transaction (a modelevent.SQLDatabase and TxWriter, as the SQL store); use relay")
		}
		if store.Dialect() != cfg.Dialect {
			return nil, fmt.Errorf("outbox.record: tx needs the store in the outbox's database, but the store is %s and outbox.dialect %s; use relay",
				store.Dialect(), cfg.Dialect)
		}
	case OutboxRecordRelay:
	default:
		return nil, fmt.Errorf("outbox.record: unknown value %q (accepted: tx, relay)", cfg.Record)
	}
	o := &Outbox{b: b, cfg: cfg, store: store, txw: txw, ocfg: cfg.Config}
	if err := o.ocfg.Validate(); err != nil {
		return nil, err
	}
	return o, nil
}

// Config returns the outbox's configuration with defaults applied.
func (o *Outbox) Config() OutboxConfig { return o.cfg }

// DB returns the database of the outbox table, opening it on first use when
// OutboxConfig.DSN is set.
func (o *Outbox) DB(ctx context.Context) (*sql.DB, error) {
	if o.cfg.DSN == "" {
		return o.store.DB(), nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.opened == nil {
		s, err := modelevent.Open(ctx, o.cfg.Dialect, o.cfg.DSN)
		if err != nil {
			return nil, fmt.Errorf("outbox.dsn: %w", err)
		}
		o.opened = s
	}
	return o.opened.DB(), nil
}

// InitializeSchema creates the outbox table if it does not exist. NewRelay does it too;
// call it when the first PublishTx may come before the relay starts.
func (o *Outbox) InitializeSchema(ctx context.Context) error {
	db, err := o.DB(ctx)
	if err != nil {
		return err
	}
	return outbox.InitializeSchema(ctx, db, o.ocfg)
}

// NewRelay returns the relay of the outbox to the bus's backend: it creates the table
// if needed, publishes through the backend's publisher and records the produced rows
// through the bus's recorder (so OnChange listeners see them). Run it while the bus
// runs; Close it before the bus.
func (o *Outbox) NewRelay(ctx context.Context) (*outbox.Relay, error) {
	db, err := o.DB(ctx)
	if err != nil {
		return nil, err
	}
	pub := o.b.publisher
	if o.b.tracer != nil {
		pub = o.b.tracer.Publisher(pub) // continues the trace PublishTx stored
	}
	return outbox.NewRelay(ctx, db, o.ocfg, outbox.RelayOptions{
		Publisher: pub,
		Record:    o.b.rec.RecordDurably,
		Backend:   o.b.cfg.Backend,
		Logger:    o.b.log,
	})
}

// Close closes the database NewRelay or DB opened. It is idempotent.
func (o *Outbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.opened == nil {
		return nil
	}
	err := o.opened.Close()
	o.opened = nil
	return err
}

// PublishTx writes msgs for topic into the outbox table inside tx, the caller's
// transaction, with (record tx) their produced ModelEvents, status pending: all of it
// commits or rolls back with tx. After the commit the relay publishes them to topic on
// the backend, at least once and in commit order, and marks the rows published. Messages
// are prepared as by Publish (UUID, correlation id, payload limit). PublishTx neither
// commits nor rolls back tx; after an error, roll it back. The outbox table must exist
// (InitializeSchema or a relay created before). With Config.TracerProvider set, the
// call is a "create <topic>" span, child of ctx's span, whose context the messages
// keep in their metadata: the relay's publish and the consumers continue that trace.
func (o *Outbox) PublishTx(ctx context.Context, tx *sql.Tx, topic string, msgs ...*message.Message) error {
	if topic == "" {
		return errors.New("eventbus: publish in transaction: empty topic")
	}
	if tx == nil {
		return fmt.Errorf("eventbus: publish %q in transaction: nil *sql.Tx", topic)
	}
	if !o.b.pubs.enter() {
		return fmt.Errorf("eventbus: publish %q in transaction: %w", topic, ErrClosed)
	}
	defer o.b.pubs.leave()
	if len(msgs) == 0 {
		return nil
	}
	if err := o.b.prepareTx(ctx, topic, msgs); err != nil {
		return err
	}
	if o.b.tracer != nil {
		span := o.b.tracer.StartCreate(ctx, topic, msgs)
		err := o.publishTx(ctx, tx, topic, msgs)
		tracing.End(span, err)
		return err
	}
	return o.publishTx(ctx, tx, topic, msgs)
}

// publishTx writes the prepared msgs into the outbox table and (record tx) their rows.
func (o *Outbox) publishTx(ctx context.Context, tx *sql.Tx, topic string, msgs []*message.Message) error {
	pub, err := outbox.NewTxPublisher(tx, o.ocfg)
	if err != nil {
		return fmt.Errorf("eventbus: publish %q in transaction: %w", topic, err)
	}
	if err := pub.Publish(topic, msgs...); err != nil {
		return fmt.Errorf("eventbus: publish %q in transaction: outbox %s: %w", topic, o.ocfg.Table, err)
	}
	if o.cfg.Record != OutboxRecordTx {
		return nil
	}
	changes := make([]modelevent.Change, len(msgs))
	for i, m := range msgs {
		c := o.b.rec.ProducedChange(topic, m, time.Now(), nil)
		c.Event.Status, c.Event.Attempts, c.NewAttempts = modelevent.StatusPending, 0, nil
		changes[i] = c
	}
	if err := o.txw.WriteTx(ctx, tx, changes); err != nil {
		return fmt.Errorf("eventbus: publish %q in transaction: %w", topic, err)
	}
	return nil
}

// PublishTx is Outbox.PublishTx on the bus's outbox (by default: in the store's
// database, the produced rows written in tx). Run the outbox's relay to deliver.
func (b *Bus) PublishTx(ctx context.Context, tx *sql.Tx, topic string, msgs ...*message.Message) error {
	o, err := b.defaultOutbox()
	if err != nil {
		return fmt.Errorf("eventbus: publish %q in transaction: %w", topic, err)
	}
	return o.PublishTx(ctx, tx, topic, msgs...)
}

// defaultOutbox is the outbox of the bus's configuration: the running one when
// outbox.enabled, else one made for the call (it opens nothing).
func (b *Bus) defaultOutbox() (*Outbox, error) {
	if b.outbox != nil {
		return b.outbox, nil
	}
	return NewOutbox(b, b.cfg.Outbox)
}

// prepareTx prepares msgs as Publish does: a UUID, the correlation id, the payload
// limit; and ctx as their context (the outbox insert runs with it).
func (b *Bus) prepareTx(ctx context.Context, topic string, msgs []*message.Message) error {
	if err := b.prepare(ctx, msgs); err != nil {
		return fmt.Errorf("eventbus: publish %q in transaction: %w", topic, err)
	}
	for _, m := range msgs {
		m.SetContext(ctx)
	}
	return nil
}
