package kafka

import (
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"
)

// SchemaRegistryConfig configures Confluent wire-format serialization against a schema
// registry (backend_settings.schema_registry). It applies only when
// Config.SchemaRegistryURL is set, and only to the topics it names (Schemas and
// Topics): every other topic, such as the poison topic, carries payloads as they are.
type SchemaRegistryConfig struct {
	// Username and Password authenticate to the registry with HTTP basic auth
	// (Confluent Cloud: the API key and secret). Both or neither. Default none.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// TLS verifies the registry's certificate (https URLs) and presents a client
	// certificate. Default: the system's roots, no client certificate.
	TLS RegistryTLSConfig `yaml:"tls"`
	// Format is the schema type: "avro" (default). "json_schema" is not supported yet.
	Format string `yaml:"format"`
	// SubjectStrategy names the subject of a topic's value schema: "topic" (default,
	// Confluent's TopicNameStrategy: "<topic>-value"), "record" (RecordNameStrategy:
	// the record's full name, e.g. "shop.Order") or "topic_record"
	// (TopicRecordNameStrategy: "<topic>-<full name>"). The record's name is the local
	// schema's (Schemas) or, without one, the message's model (metadata eventbus_model,
	// set by bus.NewModelMessage).
	SubjectStrategy string `yaml:"subject_strategy"`
	// AutoRegister registers a topic's local schema (Schemas) under its subject on the
	// first publish when the registry does not have it. Default false: the schema must
	// have been registered (by CI or an operator) or publishing fails.
	AutoRegister bool `yaml:"auto_register"`
	// Schemas maps a topic to a local Avro schema file (.avsc). Publishing to the topic
	// encodes with this schema (its registry id is looked up, or registered with
	// AutoRegister); consuming decodes every message with the writer's schema (by the
	// id on the wire) and resolves it to this one, so fields added with defaults
	// appear on old messages. Default none.
	Schemas map[string]string `yaml:"schemas"`
	// Topics lists more topics serialized with the registry, without a local schema:
	// publishing encodes with the latest version of the subject (cached for CacheTTL),
	// consuming decodes with the writer's schema. Default none.
	Topics []string `yaml:"topics"`
	// CacheTTL is how long the latest version of a subject (for Topics) is cached
	// before it is asked again; schemas by id never change and are cached for the
	// process's life. Default 5m.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// Timeout bounds each request to the registry. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// RegistryTLSConfig configures TLS to the schema registry; an https URL turns it on.
type RegistryTLSConfig struct {
	// CAFile is a PEM file of the CAs that sign the registry's certificate. Default:
	// the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key. Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// InsecureSkipVerify skips verifying the registry's certificate. For tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// The accepted values of SchemaRegistryConfig.Format and SubjectStrategy, and its
// defaults.
const (
	FormatAvro       = "avro"
	FormatJSONSchema = "json_schema"

	SubjectTopic       = "topic"
	SubjectRecord      = "record"
	SubjectTopicRecord = "topic_record"

	DefaultSchemaCacheTTL  = 5 * time.Minute
	DefaultRegistryTimeout = 10 * time.Second
)

func (c *SchemaRegistryConfig) setDefaults() {
	if c.Format == "" {
		c.Format = FormatAvro
	}
	if c.SubjectStrategy == "" {
		c.SubjectStrategy = SubjectTopic
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultSchemaCacheTTL
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultRegistryTimeout
	}
}

// isZero reports whether nothing under schema_registry was set.
func (c SchemaRegistryConfig) isZero() bool {
	return c.Username == "" && c.Password == "" && c.TLS == (RegistryTLSConfig{}) && c.Format == "" &&
		c.SubjectStrategy == "" && !c.AutoRegister && len(c.Schemas) == 0 && len(c.Topics) == 0 &&
		c.CacheTTL == 0 && c.Timeout == 0
}

// validate checks the registry settings; url is Config.SchemaRegistryURL.
func (c SchemaRegistryConfig) validate(rawURL string) error {
	if rawURL == "" {
		if !c.isZero() {
			return fmt.Errorf("backend_settings.schema_registry: set, but schema_registry_url is empty (set schema_registry_url: http://host:8081)")
		}
		return nil
	}
	for _, u := range registryURLs(rawURL) {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("backend_settings.schema_registry_url: %q is not an http(s) URL (want e.g. http://127.0.0.1:8081)", u)
		}
	}
	c.setDefaults()
	switch c.Format {
	case FormatAvro:
	case FormatJSONSchema:
		return fmt.Errorf("backend_settings.schema_registry.format: json_schema is not supported yet (accepted: avro)")
	default:
		return fmt.Errorf("backend_settings.schema_registry.format: %q is not accepted (accepted: avro)", c.Format)
	}
	switch c.SubjectStrategy {
	case SubjectTopic, SubjectRecord, SubjectTopicRecord:
	default:
		return fmt.Errorf("backend_settings.schema_registry.subject_strategy: %q is not accepted (accepted: %s, %s, %s)",
			c.SubjectStrategy, SubjectTopic, SubjectRecord, SubjectTopicRecord)
	}
	if (c.Username == "") != (c.Password == "") {
		return fmt.Errorf("backend_settings.schema_registry.username: username and password go together (set both, or neither)")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return fmt.Errorf("backend_settings.schema_registry.tls.cert_file: cert_file and key_file go together (set both, or neither)")
	}
	if len(c.Schemas) == 0 && len(c.Topics) == 0 {
		return fmt.Errorf("backend_settings.schema_registry.topics: name the topics serialized with the registry (topics: [orders]), or give their schema files (schemas: {orders: order.avsc})")
	}
	for _, topic := range sortedKeys(c.Schemas) {
		path := c.Schemas[topic]
		if strings.TrimSpace(topic) == "" {
			return fmt.Errorf("backend_settings.schema_registry.schemas: empty topic name")
		}
		if path == "" {
			return fmt.Errorf("backend_settings.schema_registry.schemas.%s: empty path (want the path of an .avsc file)", topic)
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("backend_settings.schema_registry.schemas.%s: %w", topic, err)
		}
	}
	for i, topic := range c.Topics {
		if strings.TrimSpace(topic) == "" {
			return fmt.Errorf("backend_settings.schema_registry.topics[%d]: empty topic name", i)
		}
	}
	if c.CacheTTL < 0 {
		return fmt.Errorf("backend_settings.schema_registry.cache_ttl: must be positive, got %v", c.CacheTTL)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("backend_settings.schema_registry.timeout: must be positive, got %v", c.Timeout)
	}
	return nil
}

// registryURLs splits a comma-separated schema_registry_url.
func registryURLs(raw string) []string {
	var out []string
	for _, u := range strings.Split(raw, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
