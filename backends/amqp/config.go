package amqp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/go-eventbus/eventbus/internal/tlsfiles"
)

// Topologies accepted by Config.Topology.
const (
	// TopologyDurablePubSub declares an exchange per topic and a durable queue per
	// consumer bound to it: every consumer receives every message, and processes using
	// the same consumer name share that consumer's queue.
	TopologyDurablePubSub = "durable_pubsub"
	// TopologyDurableQueue declares one durable queue per topic, fed through the default
	// exchange: all consumers of a topic, whatever their names, share its messages
	// (competing consumers, each message handled once).
	TopologyDurableQueue = "durable_queue"
)

// Placeholders of Config.ExchangeNameTemplate and Config.QueueNameTemplate.
const (
	// PlaceholderTopic is replaced by the Watermill topic.
	PlaceholderTopic = "{topic}"
	// PlaceholderConsumer is replaced by the consumer name (durable_pubsub only).
	PlaceholderConsumer = "{consumer}"
)

// Defaults of Config.
const (
	DefaultURL                     = "amqp://guest:guest@127.0.0.1:5672/"
	DefaultExchangeType            = "fanout"
	DefaultExchangeNameTemplate    = PlaceholderTopic
	DefaultPubSubQueueNameTemplate = PlaceholderTopic + "_" + PlaceholderConsumer
	DefaultQueueQueueNameTemplate  = PlaceholderTopic
	// DefaultPrefetchCount is per consumer channel: with DefaultConcurrency channels a
	// subscription has up to 256 messages sent ahead.
	DefaultPrefetchCount = 16
	// DefaultConcurrency is 16 AMQP consumers per subscription, so 16 messages are in
	// flight and durable recording commits their rows together. Set 1 to keep order.
	DefaultConcurrency         = 16
	DefaultPublishChannels     = 16
	DefaultConnectTimeout      = 10 * time.Second
	DefaultReconnectInitial    = 500 * time.Millisecond
	DefaultReconnectMultiplier = 1.5
	DefaultReconnectMax        = 10 * time.Second
)

// exchangeTypes are the accepted values of Config.ExchangeType.
var exchangeTypes = []string{"fanout", "topic", "direct"}

// Config configures the amqp backend; it is the backend_settings of `backend: amqp`.
// The zero Config connects to DefaultURL with the durable_pubsub topology.
type Config struct {
	// URL is the broker's address, amqp://user:password@host:port/vhost or amqps://…
	// for TLS. Default "amqp://guest:guest@127.0.0.1:5672/".
	URL string `yaml:"url"`
	// Topology is durable_pubsub (default: every consumer gets every message) or
	// durable_queue (one queue per topic shared by every consumer of that topic).
	Topology string `yaml:"topology"`
	// ExchangeType is the type of the exchanges declared by durable_pubsub: fanout
	// (default), topic or direct. With topic and direct the routing and binding key is
	// the topic, so one exchange (a constant ExchangeNameTemplate) can carry every
	// topic. Not accepted with durable_queue, which uses the default exchange.
	ExchangeType string `yaml:"exchange_type"`
	// ExchangeNameTemplate names the exchange of a topic ({topic} is replaced).
	// Default "{topic}". With a fanout exchange it must contain {topic}.
	ExchangeNameTemplate string `yaml:"exchange_name_template"`
	// QueueNameTemplate names a consumer's queue: {topic} and {consumer} are replaced.
	// Default "{topic}_{consumer}" for durable_pubsub (it must contain {consumer}) and
	// "{topic}" for durable_queue (it must not).
	QueueNameTemplate string `yaml:"queue_name_template"`
	// PrefetchCount is the QoS prefetch of each consumer's channel: how many unacked
	// messages the broker sends ahead to it. Each consumer handles one at a time, so a
	// few are enough to keep it busy; more only hoards messages that other processes
	// on the queue could take, and are redelivered when this process dies. A
	// subscription holds up to PrefetchCount × Concurrency. Default 16.
	PrefetchCount int `yaml:"prefetch_count"`
	// Concurrency is how many AMQP consumers (each on a channel of its own) a
	// subscription runs on its queue, so up to that many messages are handled at once:
	// each consumer hands over one message and the next after its ack. With durable
	// recording, throughput is about Concurrency rows per store commit. Default 16
	// (DefaultConcurrency): messages of a queue are handled in parallel and in no
	// particular order. Set 1 to handle them one at a time, in publish order.
	Concurrency int `yaml:"concurrency"`
	// PublishChannels is the number of AMQP channels the publisher keeps open and
	// publishes on concurrently. Default 16; -1 opens a channel per Publish call.
	PublishChannels int `yaml:"publish_channels"`
	// PublisherConfirms makes Publish wait for the broker's confirm of every message,
	// so an accepted message is stored by the broker. Default true.
	PublisherConfirms *bool `yaml:"publisher_confirms"`
	// Reconnect is the backoff between attempts to reconnect a lost connection.
	Reconnect ReconnectConfig `yaml:"reconnect"`
	// TLS configures TLS for an amqps:// URL. Without it amqps:// uses the system's
	// root certificates.
	TLS *TLSConfig `yaml:"tls"`
	// ConnectTimeout bounds connecting (TCP, TLS and AMQP handshake). Default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// ReconnectConfig is the exponential backoff between reconnection attempts; attempts
// go on until the backend is closed.
type ReconnectConfig struct {
	// InitialInterval is the wait before the first attempt. Default 500ms.
	InitialInterval time.Duration `yaml:"initial_interval"`
	// Multiplier grows the wait after each failed attempt. Default 1.5; at least 1.
	Multiplier float64 `yaml:"multiplier"`
	// MaxInterval caps the wait. Default 10s.
	MaxInterval time.Duration `yaml:"max_interval"`
}

// TLSConfig configures TLS for amqps:// URLs.
type TLSConfig struct {
	// CAFile is a PEM file of the certificate authorities to trust instead of the
	// system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile is the PEM client certificate for mutual TLS; it needs KeyFile.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `yaml:"key_file"`
	// InsecureSkipVerify disables verification of the server's certificate. For tests
	// only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

func (c *Config) setDefaults() {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Topology == "" {
		c.Topology = TopologyDurablePubSub
	}
	if c.Topology == TopologyDurablePubSub {
		if c.ExchangeType == "" {
			c.ExchangeType = DefaultExchangeType
		}
		if c.ExchangeNameTemplate == "" {
			c.ExchangeNameTemplate = DefaultExchangeNameTemplate
		}
		if c.QueueNameTemplate == "" {
			c.QueueNameTemplate = DefaultPubSubQueueNameTemplate
		}
	}
	if c.Topology == TopologyDurableQueue && c.QueueNameTemplate == "" {
		c.QueueNameTemplate = DefaultQueueQueueNameTemplate
	}
	if c.PrefetchCount == 0 {
		c.PrefetchCount = DefaultPrefetchCount
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.PublishChannels == 0 {
		c.PublishChannels = DefaultPublishChannels
	}
	if c.PublisherConfirms == nil {
		yes := true
		c.PublisherConfirms = &yes
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.Reconnect.InitialInterval == 0 {
		c.Reconnect.InitialInterval = DefaultReconnectInitial
	}
	if c.Reconnect.Multiplier == 0 {
		c.Reconnect.Multiplier = DefaultReconnectMultiplier
	}
	if c.Reconnect.MaxInterval == 0 {
		c.Reconnect.MaxInterval = DefaultReconnectMax
	}
}

// Validate reports the first mistake in c (after defaults), naming the key under
// backend_settings and how to fix it. It does not connect.
func (c Config) Validate() error {
	if err := validateURL(c.URL); err != nil {
		return err
	}
	switch c.Topology {
	case TopologyDurablePubSub:
		if !contains(exchangeTypes, c.ExchangeType) {
			if c.ExchangeType == "headers" {
				return errors.New(`backend_settings.exchange_type: "headers" is not yet supported (accepted: fanout, topic, direct)`)
			}
			return fmt.Errorf("backend_settings.exchange_type: unknown type %q (accepted: %s)", c.ExchangeType, strings.Join(exchangeTypes, ", "))
		}
		if c.ExchangeType == "fanout" && !strings.Contains(c.ExchangeNameTemplate, PlaceholderTopic) {
			return fmt.Errorf("backend_settings.exchange_name_template: %q has no %s: a fanout exchange shared by every topic would deliver every topic to every queue; add %s or use exchange_type topic",
				c.ExchangeNameTemplate, PlaceholderTopic, PlaceholderTopic)
		}
		if strings.Contains(c.ExchangeNameTemplate, PlaceholderConsumer) {
			return fmt.Errorf("backend_settings.exchange_name_template: %q must not contain %s (publishers know no consumer)", c.ExchangeNameTemplate, PlaceholderConsumer)
		}
		if !strings.Contains(c.QueueNameTemplate, PlaceholderConsumer) {
			return fmt.Errorf("backend_settings.queue_name_template: %q has no %s: with durable_pubsub every consumer needs a queue of its own; add %s (default %q)",
				c.QueueNameTemplate, PlaceholderConsumer, PlaceholderConsumer, DefaultPubSubQueueNameTemplate)
		}
	case TopologyDurableQueue:
		if c.ExchangeType != "" || c.ExchangeNameTemplate != "" {
			key := "exchange_type"
			if c.ExchangeType == "" {
				key = "exchange_name_template"
			}
			return fmt.Errorf("backend_settings.%s: not used by topology durable_queue, which publishes to the queue through the default exchange; remove it or use topology durable_pubsub", key)
		}
		if strings.Contains(c.QueueNameTemplate, PlaceholderConsumer) {
			return fmt.Errorf("backend_settings.queue_name_template: %q must not contain %s with durable_queue (publishers declare the queue and know no consumer); use topology durable_pubsub for a queue per consumer",
				c.QueueNameTemplate, PlaceholderConsumer)
		}
	default:
		return fmt.Errorf("backend_settings.topology: unknown topology %q (accepted: %s, %s)", c.Topology, TopologyDurablePubSub, TopologyDurableQueue)
	}
	if c.PrefetchCount < 0 || c.PrefetchCount > 65535 {
		return fmt.Errorf("backend_settings.prefetch_count: must be between 1 and 65535, got %d", c.PrefetchCount)
	}
	if c.Concurrency < 1 || c.Concurrency > 1024 {
		return fmt.Errorf("backend_settings.concurrency: must be between 1 and 1024, got %d", c.Concurrency)
	}
	if c.PublishChannels < -1 {
		return fmt.Errorf("backend_settings.publish_channels: must be ≥ 1, or -1 for a channel per publish, got %d", c.PublishChannels)
	}
	if c.ConnectTimeout < 0 {
		return fmt.Errorf("backend_settings.connect_timeout: must be positive, got %v", c.ConnectTimeout)
	}
	if c.Reconnect.Multiplier < 1 {
		return fmt.Errorf("backend_settings.reconnect.multiplier: must be ≥ 1, got %v", c.Reconnect.Multiplier)
	}
	if c.Reconnect.MaxInterval < c.Reconnect.InitialInterval {
		return fmt.Errorf("backend_settings.reconnect.max_interval: %v is below initial_interval %v", c.Reconnect.MaxInterval, c.Reconnect.InitialInterval)
	}
	if c.TLS != nil {
		if !strings.HasPrefix(strings.ToLower(c.URL), "amqps://") {
			return fmt.Errorf("backend_settings.tls: set, but url %s is not amqps://; use an amqps:// url (usually port 5671) or remove tls", redact(c.URL))
		}
		if _, err := c.TLS.build(); err != nil {
			return err
		}
	}
	return nil
}

func validateURL(raw string) error {
	const want = "want amqp://user:password@host:5672/vhost, or amqps://… for TLS"
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("backend_settings.url: %s cannot be parsed (%s)", redact(raw), want)
	}
	if s := strings.ToLower(u.Scheme); s != "amqp" && s != "amqps" {
		return fmt.Errorf("backend_settings.url: scheme %q is not supported in %s (%s)", u.Scheme, redact(raw), want)
	}
	if _, err := amqp091.ParseURI(raw); err != nil {
		return fmt.Errorf("backend_settings.url: %s: %v (%s)", redact(raw), err, want)
	}
	return nil
}

// redact hides the password of a URL for errors and logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") {
			return "(url with credentials, not shown)"
		}
		return fmt.Sprintf("%q", raw)
	}
	return u.Redacted()
}

// build returns the tls.Config described by t.
func (t *TLSConfig) build() (*tls.Config, error) {
	return tlsfiles.Load("backend_settings.tls", tlsfiles.Files{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, InsecureSkipVerify: t.InsecureSkipVerify})
}

// exchangeName returns the exchange of topic ("" for the default exchange).
func (c Config) exchangeName(topic string) string {
	if c.Topology == TopologyDurableQueue {
		return ""
	}
	return strings.ReplaceAll(c.ExchangeNameTemplate, PlaceholderTopic, topic)
}

// queueName returns the queue of consumer for topic.
func (c Config) queueName(topic, consumer string) string {
	n := strings.ReplaceAll(c.QueueNameTemplate, PlaceholderTopic, topic)
	return strings.ReplaceAll(n, PlaceholderConsumer, consumer)
}

// routingKey returns the routing key of a message published to topic, which is also
// the binding key of durable_pubsub queues.
func (c Config) routingKey(topic string) string {
	switch {
	case c.Topology == TopologyDurableQueue:
		return c.queueName(topic, "")
	case c.ExchangeType == "fanout":
		return ""
	default:
		return topic
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
