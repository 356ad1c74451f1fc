package sqlbackend

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrClosed is returned by Subscriber and Publish after Close.
var ErrClosed = errors.New("sql: backend closed")

// Backend is the sql backend: topics are tables of one PostgreSQL or MySQL/MariaDB
// database, read by watermill-sql subscribers, one consumer group per consumer. It is
// safe for concurrent use.
type Backend struct {
	cfg     Config
	logger  watermill.LoggerAdapter
	tables  tables
	db      wsql.Beginner
	pool    *pgxpool.Pool // postgres
	sqlDB   *stdsql.DB    // mysql
	schema  wsql.SchemaAdapter
	offsets wsql.OffsetsAdapter
	pub     *publisher

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg, connects to the database within cfg.ConnectTimeout and returns
// the backend. It creates no table: topics get theirs on first use (InitializeSchema)
// or from InitializeTopic. A nil logger discards Watermill's logs.
func New(ctx context.Context, cfg Config, logger watermill.LoggerAdapter) (*Backend, error) {
	b, err := open(ctx, cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("sql: %w", err)
	}
	return b, nil
}

// open is New without the "sql: " prefix on errors (the registry adds its own).
func open(ctx context.Context, cfg Config, logger watermill.LoggerAdapter) (*Backend, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	b := &Backend{
		cfg:    cfg,
		logger: logger,
		tables: tables{driver: cfg.Driver, prefix: cfg.TablePrefix},
		subs:   map[*subscriber]struct{}{},
	}
	if err := b.connect(ctx); err != nil {
		return nil, err
	}
	var err error
	b.schema, b.offsets, err = adapters(cfg, b.tables)
	if err != nil {
		b.closeDB()
		return nil, err
	}
	wp, err := wsql.NewPublisher(b.db, wsql.PublisherConfig{
		SchemaAdapter:        b.schema,
		AutoInitializeSchema: *cfg.InitializeSchema,
	}, logger)
	if err != nil {
		b.closeDB()
		return nil, fmt.Errorf("publisher: %w", err)
	}
	b.pub = &publisher{pub: wp, closed: make(chan struct{})}
	return b, nil
}

// connect opens the connection pool and checks, within ConnectTimeout, that the
// database answers.
func (b *Backend) connect(ctx context.Context) error {
	cfg := b.cfg
	pctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	unreachable := func(err error) error {
		return fmt.Errorf("connect to %s at %q: database unreachable within connect_timeout %v: %s (check backend_settings.dsn and that the database is up)",
			cfg.Driver, RedactDSN(cfg.Driver, cfg.DSN), cfg.ConnectTimeout, redactErr(err, cfg.DSN))
	}
	switch cfg.Driver {
	case DriverPostgres:
		pc, err := pgxpool.ParseConfig(cfg.DSN)
		if err != nil {
			return fmt.Errorf("backend_settings.dsn: %q is not a PostgreSQL DSN: %s", RedactDSN(cfg.Driver, cfg.DSN), redactErr(err, cfg.DSN))
		}
		if !dsnHas(cfg.DSN, "pool_max_conns") {
			pc.MaxConns = int32(cfg.MaxConns)
		}
		if pc.ConnConfig.ConnectTimeout == 0 || pc.ConnConfig.ConnectTimeout > cfg.ConnectTimeout {
			pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
		}
		pool, err := pgxpool.NewWithConfig(pctx, pc)
		if err != nil {
			return unreachable(err)
		}
		if err := pool.Ping(pctx); err != nil {
			pool.Close()
			return unreachable(err)
		}
		b.pool = pool
		b.db = wsql.BeginnerFromPgx(pool)
	case DriverMySQL:
		mc, err := mysql.ParseDSN(cfg.DSN)
		if err != nil {
			return fmt.Errorf("backend_settings.dsn: %q is not a MySQL DSN: %s", RedactDSN(cfg.Driver, cfg.DSN), redactErr(err, cfg.DSN))
		}
		if mc.Timeout == 0 || mc.Timeout > cfg.ConnectTimeout {
			mc.Timeout = cfg.ConnectTimeout
		}
		connector, err := mysql.NewConnector(mc)
		if err != nil {
			return fmt.Errorf("backend_settings.dsn: %s", redactErr(err, cfg.DSN))
		}
		db := stdsql.OpenDB(connector)
		db.SetMaxOpenConns(cfg.MaxConns)
		db.SetMaxIdleConns(cfg.MaxConns)
		if err := db.PingContext(pctx); err != nil {
			_ = db.Close()
			return unreachable(err)
		}
		b.sqlDB = db
		b.db = wsql.BeginnerFromStdSQL(db)
	}
	return nil
}

// Config returns the backend's configuration with defaults applied.
func (b *Backend) Config() Config { return b.cfg }

// Publisher returns the publisher for every topic. Publish inserts the messages of one
// call in one statement, in order, and returns once they are committed; an error (the
// database unreachable) means none was stored and the caller may retry.
func (b *Backend) Publisher() message.Publisher { return b.pub }

// Subscriber returns a new subscriber for consumer: a watermill-sql subscriber of
// consumer group ConsumerGroupPrefix+consumer. Subscribers of the same group, in this
// process or others, share its messages; every group receives every message of the
// topic, including those published before the group first subscribed.
func (b *Backend) Subscriber(consumer string) (message.Subscriber, error) {
	if consumer == "" {
		return nil, errors.New("sql: subscriber needs a consumer name")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	ack := b.cfg.AckDeadline
	ws, err := wsql.NewSubscriber(b.db, wsql.SubscriberConfig{
		ConsumerGroup:    b.ConsumerGroup(consumer),
		AckDeadline:      &ack,
		PollInterval:     b.cfg.PollInterval,
		ResendInterval:   b.cfg.ResendInterval,
		RetryInterval:    b.cfg.RetryInterval,
		SchemaAdapter:    b.schema,
		OffsetsAdapter:   b.offsets,
		InitializeSchema: *b.cfg.InitializeSchema,
	}, b.logger)
	if err != nil {
		return nil, fmt.Errorf("sql: subscriber for consumer %s: %w", consumer, err)
	}
	s := &subscriber{sub: ws, b: b}
	b.subs[s] = struct{}{}
	return s, nil
}

// ConsumerGroup returns the watermill-sql consumer group of consumer.
func (b *Backend) ConsumerGroup(consumer string) string {
	return b.cfg.ConsumerGroupPrefix + consumer
}

// MessagesTable returns the name of topic's messages table (unquoted).
func (b *Backend) MessagesTable(topic string) string { return b.tables.messages(topic) }

// OffsetsTable returns the name of topic's consumer offsets table (unquoted).
func (b *Backend) OffsetsTable(topic string) string { return b.tables.offsets(topic) }

// InitializeTopic creates topic's messages and offsets tables if they do not exist.
// Use it from a migration step when initialize_schema is false.
func (b *Backend) InitializeTopic(ctx context.Context, topic string) error {
	qs, err := b.schema.SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams{Topic: topic})
	if err != nil {
		return fmt.Errorf("sql: initialize %q: %w", topic, err)
	}
	oq, err := b.offsets.SchemaInitializingQueries(wsql.OffsetsSchemaInitializingQueriesParams{Topic: topic})
	if err != nil {
		return fmt.Errorf("sql: initialize %q: %w", topic, err)
	}
	if err := validTopic(topic); err != nil {
		return fmt.Errorf("sql: initialize %q: %w", topic, err)
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sql: initialize %q: %w", topic, err)
	}
	for _, q := range append(qs, oq...) {
		if _, err := tx.ExecContext(ctx, q.Query, q.Args...); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("sql: initialize %q: %w", topic, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sql: initialize %q: %w", topic, err)
	}
	return nil
}

// Close closes every subscriber the backend made, then the publisher (waiting for
// running Publish calls), then the connection pool. It is idempotent.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
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
		b.closeDB()
		b.closeErr = errors.Join(errs...)
	})
	return b.closeErr
}

func (b *Backend) closeDB() {
	if b.pool != nil {
		b.pool.Close()
	}
	if b.sqlDB != nil {
		_ = b.sqlDB.Close()
	}
}

func (b *Backend) forget(s *subscriber) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}
