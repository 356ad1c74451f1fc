package kafka

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/go-eventbus/eventbus/modelevent"
)

// Config configures the kafka backend. Its yaml keys are the keys of backend_settings;
// the zero value of every field but BrokerHosts takes the default named in its comment.
type Config struct {
	// BrokerHosts lists the bootstrap brokers as host:port. Required.
	BrokerHosts []string `yaml:"broker_hosts"`
	// ConsumerGroup prefixes the Kafka consumer group of every bus consumer: a consumer
	// named "billing" joins group "<consumer_group>.billing", or just "billing" when
	// ConsumerGroup is empty (the default). Processes with the same prefix and consumer
	// name share that consumer's partitions.
	ConsumerGroup string `yaml:"consumer_group"`
	// InitialOffset is where a consumer group with no committed offset starts: "oldest"
	// (default: nothing published before a consumer's first start is lost) or "newest".
	InitialOffset string `yaml:"initial_offset"`
	// ClientID is the client id sent to the brokers (quotas, broker logs). Default
	// "eventbus".
	ClientID string `yaml:"client_id"`
	// KafkaVersion is the lowest broker version the client may assume, e.g. "3.6.0".
	// Default "2.8.0" (sarama's full protocol coverage; works with Kafka ≥ 2.8, Redpanda
	// and kfake).
	KafkaVersion string `yaml:"kafka_version"`
	// TLS encrypts the connections to the brokers. Default off.
	TLS TLSConfig `yaml:"tls"`
	// SASL authenticates to the brokers. Default off.
	SASL SASLConfig `yaml:"sasl"`
	// PartitionKey is the metadata key whose value becomes the Kafka message key, so
	// messages with the same value go to the same partition and keep their order.
	// Messages without it are spread over the partitions. Default "eventbus_key"
	// (modelevent.MetadataKey).
	PartitionKey string `yaml:"partition_key"`
	// ConnectTimeout bounds connecting to the brokers (New fails after it) and each
	// dial. Default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// NackResendSleep is how long a nacked message waits before it is handed to the
	// consumer again. Default 100ms.
	NackResendSleep time.Duration `yaml:"nack_resend_sleep"`
	// ReconnectRetrySleep is how long a subscription waits between attempts to
	// reconnect to the brokers. Default 1s.
	ReconnectRetrySleep time.Duration `yaml:"reconnect_retry_sleep"`
	// AutoCreateTopics makes the backend create every topic it publishes to or
	// subscribes to, when missing, with Partitions and ReplicationFactor. Default true.
	// With false it creates nothing and does not ask the brokers to auto-create either:
	// publishing to a missing topic fails and a subscription retries until it exists.
	AutoCreateTopics *bool `yaml:"auto_create_topics"`
	// Partitions is the partition count of topics the backend creates. A consumer
	// handles one message per partition at a time (watermill-kafka consumes the
	// partitions assigned to a process concurrently and hands over a partition's next
	// message after the ack), so it is how many messages of a consumer are in flight
	// across its processes; with durable recording, throughput is about that many rows
	// per store commit. Default 16 (DefaultPartitions): order is kept per partition, so
	// messages with the same PartitionKey value (bus.NewChangeMessage sets it to the object
	// id) keep their order, and messages without one are spread over the partitions.
	// Set 1 for one total order per topic (and one message in flight per consumer).
	// Topics that already exist keep their partition count.
	Partitions int32 `yaml:"partitions"`
	// ReplicationFactor is the replication factor of topics the backend creates.
	// Default -1: the broker's default.replication.factor.
	ReplicationFactor int16 `yaml:"replication_factor"`
	// SessionTimeout is the consumer group session timeout: a process that stops
	// heartbeating for this long loses its partitions. Default 10s.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// HeartbeatInterval is how often a consumer heartbeats; it also bounds how fast a
	// consumer notices a rebalance. Default 3s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// RebalanceTimeout is how long a rebalance waits for every member to rejoin.
	// Default 60s.
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
	// SchemaRegistryURL is the base URL of a Confluent schema registry (several may be
	// given comma-separated, tried in order). With it, the topics named in
	// SchemaRegistry carry Confluent wire-format Avro (magic byte 0, 4-byte schema id,
	// Avro body) on Kafka while the bus, the handlers, the rows and the console see
	// JSON. Default none: payloads go to Kafka as they are.
	SchemaRegistryURL string `yaml:"schema_registry_url"`
	// SchemaRegistry configures the registry serialization; see SchemaRegistryConfig.
	SchemaRegistry SchemaRegistryConfig `yaml:"schema_registry"`
}

// TLSConfig configures TLS to the brokers.
type TLSConfig struct {
	// Enabled turns TLS on. Default false.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM file of the CAs that sign the brokers' certificates. Default: the
	// system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for mutual TLS.
	// Both or neither. Default none.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// InsecureSkipVerify skips verifying the brokers' certificates. For tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// SASLConfig configures SASL authentication.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. Empty (default) disables SASL.
	Mechanism string `yaml:"mechanism"`
	// Username and Password are the credentials; both required with a Mechanism.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// The defaults of Config.
const (
	DefaultClientID            = "eventbus"
	DefaultKafkaVersion        = "2.8.0"
	DefaultPartitionKey        = modelevent.MetadataKey
	DefaultConnectTimeout      = 10 * time.Second
	DefaultNackResendSleep     = 100 * time.Millisecond
	DefaultReconnectRetrySleep = time.Second
	DefaultPartitions          = 16
	DefaultReplicationFactor   = -1
	DefaultSessionTimeout      = 10 * time.Second
	DefaultHeartbeatInterval   = 3 * time.Second
	DefaultRebalanceTimeout    = 60 * time.Second
)

// The accepted values of Config.InitialOffset.
const (
	OffsetOldest = "oldest"
	OffsetNewest = "newest"
)

// SASLMechanisms lists the accepted values of SASLConfig.Mechanism.
var SASLMechanisms = []string{sarama.SASLTypePlaintext, sarama.SASLTypeSCRAMSHA256, sarama.SASLTypeSCRAMSHA512}

func (c *Config) setDefaults() {
	if c.InitialOffset == "" {
		c.InitialOffset = OffsetOldest
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.KafkaVersion == "" {
		c.KafkaVersion = DefaultKafkaVersion
	}
	if c.PartitionKey == "" {
		c.PartitionKey = DefaultPartitionKey
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.NackResendSleep == 0 {
		c.NackResendSleep = DefaultNackResendSleep
	}
	if c.ReconnectRetrySleep == 0 {
		c.ReconnectRetrySleep = DefaultReconnectRetrySleep
	}
	if c.AutoCreateTopics == nil {
		t := true
		c.AutoCreateTopics = &t
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = DefaultReplicationFactor
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = DefaultRebalanceTimeout
	}
}

// Validate reports the first mistake in c (after defaults), naming the key under
// backend_settings and how to fix it. It does not connect.
func (c Config) Validate() error {
	c.setDefaults()
	if len(c.BrokerHosts) == 0 {
		return fmt.Errorf("backend_settings.broker_hosts: must be a non-empty list of host:port")
	}
	for i, h := range c.BrokerHosts {
		if err := checkHostPort(h); err != nil {
			return fmt.Errorf("backend_settings.broker_hosts[%d]: %q %v: must be a non-empty list of host:port, e.g. [\"127.0.0.1:9092\"]", i, h, err)
		}
	}
	if c.InitialOffset != OffsetOldest && c.InitialOffset != OffsetNewest {
		return fmt.Errorf("backend_settings.initial_offset: %q is not accepted (accepted: %s, %s)", c.InitialOffset, OffsetOldest, OffsetNewest)
	}
	if _, err := sarama.ParseKafkaVersion(c.KafkaVersion); err != nil {
		return fmt.Errorf("backend_settings.kafka_version: %q is not a Kafka version (want e.g. \"2.8.0\" or \"3.6.0\")", c.KafkaVersion)
	}
	if v, _ := sarama.ParseKafkaVersion(c.KafkaVersion); !v.IsAtLeast(sarama.V0_11_0_0) {
		return fmt.Errorf("backend_settings.kafka_version: %q is too old (want ≥ 0.11.0: message headers carry the metadata)", c.KafkaVersion)
	}
	if v, _ := sarama.ParseKafkaVersion(c.KafkaVersion); c.ReplicationFactor == -1 && !v.IsAtLeast(sarama.V2_4_0_0) {
		return fmt.Errorf("backend_settings.replication_factor: -1 (the broker's default) needs kafka_version ≥ 2.4.0; set replication_factor explicitly")
	}
	if strings.TrimSpace(c.ClientID) == "" {
		return fmt.Errorf("backend_settings.client_id: must not be blank")
	}
	if c.Partitions < 0 {
		return fmt.Errorf("backend_settings.partitions: must be ≥ 1, got %d", c.Partitions)
	}
	if c.ReplicationFactor < -1 {
		return fmt.Errorf("backend_settings.replication_factor: must be ≥ 1, or -1 for the broker's default, got %d", c.ReplicationFactor)
	}
	if c.HeartbeatInterval >= c.SessionTimeout {
		return fmt.Errorf("backend_settings.heartbeat_interval: %v must be below session_timeout %v (a third of it is usual)", c.HeartbeatInterval, c.SessionTimeout)
	}
	if err := c.TLS.validate(); err != nil {
		return err
	}
	if err := c.SASL.validate(); err != nil {
		return err
	}
	return c.SchemaRegistry.validate(c.SchemaRegistryURL)
}

func checkHostPort(h string) error {
	host, port, err := net.SplitHostPort(strings.TrimSpace(h))
	if err != nil {
		return fmt.Errorf("is not host:port")
	}
	if host == "" {
		return fmt.Errorf("has no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("has no valid port")
	}
	return nil
}

func (t TLSConfig) validate() error {
	if !t.Enabled {
		switch {
		case t.CAFile != "":
			return fmt.Errorf("backend_settings.tls.ca_file: set, but tls.enabled is false (set tls.enabled: true)")
		case t.CertFile != "":
			return fmt.Errorf("backend_settings.tls.cert_file: set, but tls.enabled is false (set tls.enabled: true)")
		case t.KeyFile != "":
			return fmt.Errorf("backend_settings.tls.key_file: set, but tls.enabled is false (set tls.enabled: true)")
		case t.InsecureSkipVerify:
			return fmt.Errorf("backend_settings.tls.insecure_skip_verify: set, but tls.enabled is false (set tls.enabled: true)")
		}
		return nil
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return fmt.Errorf("backend_settings.tls.cert_file: cert_file and key_file go together (set both for mutual TLS, or neither)")
	}
	return nil
}

func (s SASLConfig) validate() error {
	if s.Mechanism == "" {
		if s.Username != "" || s.Password != "" {
			return fmt.Errorf("backend_settings.sasl.mechanism: must be set with a username (accepted: %s)", strings.Join(SASLMechanisms, ", "))
		}
		return nil
	}
	ok := false
	for _, m := range SASLMechanisms {
		ok = ok || m == s.Mechanism
	}
	if !ok {
		return fmt.Errorf("backend_settings.sasl.mechanism: %q is not accepted (accepted: %s)", s.Mechanism, strings.Join(SASLMechanisms, ", "))
	}
	if s.Username == "" {
		return fmt.Errorf("backend_settings.sasl.username: required with sasl.mechanism %s", s.Mechanism)
	}
	if s.Password == "" {
		return fmt.Errorf("backend_settings.sasl.password: required with sasl.mechanism %s", s.Mechanism)
	}
	return nil
}

// groupName returns the Kafka consumer group of a bus consumer.
func (c Config) groupName(consumer string) string {
	if c.ConsumerGroup == "" {
		return consumer
	}
	return c.ConsumerGroup + "." + consumer
}
