package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
)

// ErrClosed is returned by a closed Backend and by its publisher after Close.
var ErrClosed = errors.New("kafka: backend closed")

// Backend is the Kafka backend: a watermill-kafka publisher for every topic and a
// watermill-kafka consumer-group subscriber per consumer. It is safe for concurrent use.
type Backend struct {
	cfg    Config
	sc     *sarama.Config
	logger watermill.LoggerAdapter
	admin  sarama.ClusterAdmin // owns client
	client sarama.Client
	pub    *publisher
	serde  *serde // nil without schema_registry_url

	topicsMu sync.Mutex
	topics   map[string]bool // topics known to exist

	mu     sync.Mutex
	closed bool
}

var (
	_ bus.Backend    = (*Backend)(nil)
	_ bus.Backlogger = (*Backend)(nil)
)

// New validates cfg, connects to its brokers within cfg.ConnectTimeout (or ctx's
// deadline, if sooner) and returns the backend. A nil logger discards Watermill's logs.
// Errors name the setting to fix.
func New(ctx context.Context, cfg Config, logger watermill.LoggerAdapter) (*Backend, error) {
	b, err := open(ctx, cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return b, nil
}

// open is New without the "kafka:" prefix, for the registry (which names the backend).
func open(ctx context.Context, cfg Config, logger watermill.LoggerAdapter) (*Backend, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	sc, err := cfg.saramaConfig()
	if err != nil {
		return nil, err
	}
	b := &Backend{cfg: cfg, sc: sc, logger: logger, topics: map[string]bool{}}
	if cfg.SchemaRegistryURL != "" {
		if b.serde, err = newSerde(ctx, cfg.SchemaRegistryURL, cfg.SchemaRegistry, cfg.ConnectTimeout); err != nil {
			return nil, err
		}
	}

	b.client, err = connect(ctx, cfg.BrokerHosts, b.saramaConfig(), cfg)
	if err != nil {
		return nil, err
	}
	b.admin, err = sarama.NewClusterAdminFromClient(b.client)
	if err != nil {
		_ = b.client.Close()
		return nil, fmt.Errorf("connect %v: admin client: %w", cfg.BrokerHosts, err)
	}
	p, err := kafka.NewPublisher(kafka.PublisherConfig{
		Brokers:               cfg.BrokerHosts,
		Marshaler:             keyMarshaler{key: cfg.PartitionKey},
		OverwriteSaramaConfig: b.saramaConfig(),
	}, logger)
	if err != nil {
		_ = b.admin.Close()
		return nil, fmt.Errorf("connect %v: producer: %w (check backend_settings.broker_hosts)", cfg.BrokerHosts, err)
	}
	b.pub = &publisher{b: b, pub: p}
	return b, nil
}

// connect opens a sarama client, giving up after cfg.ConnectTimeout or when ctx ends.
func connect(ctx context.Context, hosts []string, sc *sarama.Config, cfg Config) (sarama.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	type result struct {
		c   sarama.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := sarama.NewClient(hosts, sc)
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("connect %v: %w (check backend_settings.broker_hosts, that the brokers run and accept this client's tls/sasl settings)", hosts, r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.c != nil {
				_ = r.c.Close()
			}
		}()
		return nil, fmt.Errorf("connect %v: no answer within connect_timeout %v: %w (check backend_settings.broker_hosts and that the brokers run)", hosts, cfg.ConnectTimeout, ctx.Err())
	}
}

// saramaConfig returns a copy of the backend's sarama config for a new client.
func (b *Backend) saramaConfig() *sarama.Config {
	c := *b.sc
	return &c
}

// Config returns the backend's configuration, defaults applied.
func (b *Backend) Config() Config { return b.cfg }

// Publisher returns the publisher for every topic. Publish returns once the brokers
// acknowledged every message (acks=all), or the first error; messages of one call are
// sent in order, one after the other. It creates missing topics when
// auto_create_topics is on.
func (b *Backend) Publisher() message.Publisher { return b.pub }

// Subscriber returns a new subscriber for consumer: each Subscribe joins the Kafka
// consumer group ConsumerGroup.consumer (see Config.ConsumerGroup) on that topic. A
// message is handed over one at a time per partition and its offset committed after
// its ack (committed in the background every second, and on Close); a nack hands it
// over again after NackResendSleep. A group with no committed offset starts at
// InitialOffset.
func (b *Backend) Subscriber(consumer string) (message.Subscriber, error) {
	if consumer == "" {
		return nil, errors.New("kafka: subscriber needs a consumer name")
	}
	if b.isClosed() {
		return nil, ErrClosed
	}
	s, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers:               b.cfg.BrokerHosts,
		Unmarshaler:           schemaUnmarshaler{keyMarshaler: keyMarshaler{key: b.cfg.PartitionKey}, serde: b.serde, logger: b.logger},
		OverwriteSaramaConfig: b.saramaConfig(),
		ConsumerGroup:         b.cfg.groupName(consumer),
		NackResendSleep:       b.cfg.NackResendSleep,
		ReconnectRetrySleep:   b.cfg.ReconnectRetrySleep,
	}, b.logger)
	if err != nil {
		return nil, fmt.Errorf("kafka: subscriber for consumer %q: %w", consumer, err)
	}
	return &subscriber{b: b, sub: s}, nil
}

// Close closes the publisher and the admin connection. Subscribers are closed by their
// owners. It is idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	errs := []error{b.pub.close()}
	if err := b.admin.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
		errs = append(errs, fmt.Errorf("kafka: close admin: %w", err))
	}
	return errors.Join(errs...)
}

func (b *Backend) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// ensureTopic creates topic when auto_create_topics is on and the backend has not seen
// it yet.
func (b *Backend) ensureTopic(topic string) error {
	if !*b.cfg.AutoCreateTopics {
		return nil
	}
	b.topicsMu.Lock()
	known := b.topics[topic]
	b.topicsMu.Unlock()
	if known {
		return nil
	}
	err := b.admin.CreateTopic(topic, &sarama.TopicDetail{
		NumPartitions:     b.cfg.Partitions,
		ReplicationFactor: b.cfg.ReplicationFactor,
	}, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("kafka: create topic %q (auto_create_topics): %w", topic, err)
	}
	if err == nil {
		b.logger.Info("Created Kafka topic", watermill.LogFields{"topic": topic, "partitions": b.cfg.Partitions})
	}
	b.topicsMu.Lock()
	b.topics[topic] = true
	b.topicsMu.Unlock()
	return nil
}
