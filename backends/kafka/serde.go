package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/go-eventbus/eventbus/internal/tlsfiles"
	"github.com/go-eventbus/eventbus/modelevent"
)

// MetadataSchemaID is set on every message of a schema-registry topic to the registry
// id of the schema its payload was (produced) or is (consumed) encoded with, so the
// console shows which schema version an event used.
const MetadataSchemaID = "eventbus_schema_id"

// wireMagic is the first byte of Confluent's wire format, followed by the schema id
// (4 bytes, big endian) and the Avro body.
const wireMagic = 0

// errPermanent marks decode failures that no retry fixes: the message is poisoned.
var errPermanent = errors.New("permanent")

// schemaInfo is a parsed schema and where it comes from.
type schemaInfo struct {
	id      int
	subject string
	schema  avro.Schema
}

// localSchema is a topic's schema file (SchemaRegistryConfig.Schemas).
type localSchema struct {
	path   string
	text   string
	schema avro.Schema
}

// latestEntry caches a subject's latest version.
type latestEntry struct {
	info schemaInfo
	at   time.Time
}

// serde turns JSON payloads into Confluent wire-format Avro and back, against a
// registry. It is safe for concurrent use.
type serde struct {
	cfg    SchemaRegistryConfig
	url    string
	cl     *sr.Client
	topics map[string]bool
	local  map[string]localSchema // by topic

	mu       sync.Mutex
	byID     map[int]avro.Schema
	readers  map[string]avro.Schema // resolved schema by "topic/writer id"
	localIDs map[string]schemaInfo  // by subject of a local schema
	latest   map[string]latestEntry // by subject
}

// newSerde parses the local schemas and checks that the registry answers (and accepts
// the credentials) within timeout.
func newSerde(ctx context.Context, rawURL string, cfg SchemaRegistryConfig, timeout time.Duration) (*serde, error) {
	cfg.setDefaults()
	httpcl, err := cfg.httpClient()
	if err != nil {
		return nil, err
	}
	opts := []sr.ClientOpt{sr.URLs(registryURLs(rawURL)...), sr.HTTPClient(httpcl), sr.UserAgent("eventbus")}
	if cfg.Username != "" {
		opts = append(opts, sr.BasicAuth(cfg.Username, cfg.Password))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("backend_settings.schema_registry_url: %w", err)
	}
	s := &serde{
		cfg: cfg, url: rawURL, cl: cl, topics: map[string]bool{}, local: map[string]localSchema{},
		byID: map[int]avro.Schema{}, readers: map[string]avro.Schema{},
		localIDs: map[string]schemaInfo{}, latest: map[string]latestEntry{},
	}
	for _, t := range cfg.Topics {
		s.topics[t] = true
	}
	for topic, path := range cfg.Schemas {
		text, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("backend_settings.schema_registry.schemas.%s: %w", topic, err)
		}
		sch, err := parseAvro(string(text))
		if err != nil {
			return nil, fmt.Errorf("backend_settings.schema_registry.schemas.%s: %s: %w", topic, path, err)
		}
		if _, named := sch.(avro.NamedSchema); !named && cfg.SubjectStrategy != SubjectTopic {
			return nil, fmt.Errorf("backend_settings.schema_registry.schemas.%s: %s is not a named schema, which subject_strategy %s needs", topic, path, cfg.SubjectStrategy)
		}
		s.local[topic] = localSchema{path: path, text: string(text), schema: sch}
		s.topics[topic] = true
	}
	if err := s.ping(ctx, timeout); err != nil {
		return nil, err
	}
	return s, nil
}

// parseAvro parses a schema on its own: named types of other schemas (and other
// versions of the same record) do not leak in.
func parseAvro(text string) (avro.Schema, error) {
	return avro.ParseWithCache(text, "", &avro.SchemaCache{})
}

func (c SchemaRegistryConfig) httpClient() (*http.Client, error) {
	tc, err := tlsfiles.Load("backend_settings.schema_registry.tls", tlsfiles.Files{CAFile: c.TLS.CAFile, CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile, InsecureSkipVerify: c.TLS.InsecureSkipVerify})
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr, Timeout: c.Timeout}, nil
}

// ping asks the registry for its global config: any answer but 401/403 means it is
// there and takes our credentials.
func (s *serde) ping(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var into map[string]any
	err := s.cl.Do(ctx, http.MethodGet, "/config", nil, &into)
	var re *sr.ResponseError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re) && (re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden):
		return fmt.Errorf("schema registry %s: credentials refused (%d %s): check backend_settings.schema_registry.username and password", s.urls(), re.StatusCode, re.Message)
	case errors.As(err, &re) && re.StatusCode < 500:
		return nil // reachable; some registries restrict /config
	case ctx.Err() != nil:
		return fmt.Errorf("schema registry %s: no answer within connect_timeout %v: %w (check backend_settings.schema_registry_url and that the registry runs)", s.urls(), timeout, err)
	}
	return fmt.Errorf("schema registry %s: %w (check backend_settings.schema_registry_url and that the registry runs)", s.urls(), httpErr(err))
}

// httpErr adds the HTTP status to the registry's error responses, whose text is only
// the registry's message.
func httpErr(err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		return fmt.Errorf("%s %s: %d %s: %w", re.Method, re.URL, re.StatusCode, http.StatusText(re.StatusCode), err)
	}
	return err
}

func (s *serde) urls() string { return s.url }

// handles reports whether topic is serialized with the registry.
func (s *serde) handles(topic string) bool { return s.topics[topic] }

// subject returns the subject of topic's value schema for a record named name.
func (s *serde) subject(topic, name string) (string, error) {
	switch s.cfg.SubjectStrategy {
	case SubjectRecord, SubjectTopicRecord:
		if name == "" {
			return "", fmt.Errorf("subject_strategy %s needs the record's name: give topic %q a local schema (schema_registry.schemas) or publish with a model (metadata %s, set by NewModelMessage)",
				s.cfg.SubjectStrategy, topic, modelevent.MetadataModel)
		}
		if s.cfg.SubjectStrategy == SubjectRecord {
			return name, nil
		}
		return topic + "-" + name, nil
	}
	return topic + "-value", nil
}

// writerSchema returns the schema, id and subject to encode a message of topic with.
func (s *serde) writerSchema(ctx context.Context, topic, model string) (schemaInfo, error) {
	if l, ok := s.local[topic]; ok {
		name := ""
		if n, ok := l.schema.(avro.NamedSchema); ok {
			name = n.FullName()
		}
		subject, err := s.subject(topic, name)
		if err != nil {
			return schemaInfo{}, err
		}
		return s.localID(ctx, topic, subject, l)
	}
	subject, err := s.subject(topic, model)
	if err != nil {
		return schemaInfo{}, err
	}
	return s.latestOf(ctx, subject)
}

// localID finds (or, with auto_register, registers) the id of a local schema.
func (s *serde) localID(ctx context.Context, topic, subject string, l localSchema) (schemaInfo, error) {
	s.mu.Lock()
	info, ok := s.localIDs[subject]
	s.mu.Unlock()
	if ok {
		return info, nil
	}
	want := sr.Schema{Schema: l.text, Type: sr.TypeAvro}
	ss, err := s.cl.LookupSchema(ctx, subject, want)
	if err != nil {
		if !isNotFound(err) {
			return schemaInfo{}, fmt.Errorf("look up schema %s under subject %s: %w", l.path, subject, httpErr(err))
		}
		if !s.cfg.AutoRegister {
			return schemaInfo{}, fmt.Errorf("schema %s (schema_registry.schemas.%s) is not registered under subject %s and auto_register is off: register it, or set schema_registry.auto_register: true", l.path, topic, subject)
		}
		ss, err = s.cl.CreateSchema(ctx, subject, want)
		if err != nil {
			return schemaInfo{}, fmt.Errorf("register schema %s under subject %s (auto_register): %w", l.path, subject, httpErr(err))
		}
	}
	info = schemaInfo{id: ss.ID, subject: subject, schema: l.schema}
	s.mu.Lock()
	s.localIDs[subject] = info
	s.byID[ss.ID] = l.schema
	s.mu.Unlock()
	return info, nil
}

// latestOf returns the latest version of subject, cached for cache_ttl.
func (s *serde) latestOf(ctx context.Context, subject string) (schemaInfo, error) {
	s.mu.Lock()
	e, ok := s.latest[subject]
	s.mu.Unlock()
	if ok && time.Since(e.at) < s.cfg.CacheTTL {
		return e.info, nil
	}
	ss, err := s.cl.SchemaByVersion(ctx, subject, -1)
	if err != nil {
		if isNotFound(err) {
			return schemaInfo{}, fmt.Errorf("no schema registered under subject %s: register one, or give the topic a local schema (schema_registry.schemas) with auto_register", subject)
		}
		return schemaInfo{}, fmt.Errorf("latest schema of subject %s: %w", subject, httpErr(err))
	}
	if ss.Type != sr.TypeAvro {
		return schemaInfo{}, fmt.Errorf("subject %s: latest schema (id %d) is %s, not Avro", subject, ss.ID, ss.Type)
	}
	sch, err := s.schemaByID(ctx, ss.ID, ss.Schema.Schema)
	if err != nil {
		return schemaInfo{}, err
	}
	info := schemaInfo{id: ss.ID, subject: subject, schema: sch}
	s.mu.Lock()
	s.latest[subject] = latestEntry{info: info, at: time.Now()}
	s.mu.Unlock()
	return info, nil
}

// schemaByID returns the parsed schema of id, fetching it when text is empty.
func (s *serde) schemaByID(ctx context.Context, id int, text string) (avro.Schema, error) {
	s.mu.Lock()
	sch, ok := s.byID[id]
	s.mu.Unlock()
	if ok {
		return sch, nil
	}
	if text == "" {
		got, err := s.cl.SchemaByID(ctx, id)
		if err != nil {
			if isNotFound(err) {
				return nil, fmt.Errorf("schema id %d is not in the registry: %w", id, errPermanent)
			}
			return nil, fmt.Errorf("fetch schema id %d: %w", id, httpErr(err))
		}
		if got.Type != sr.TypeAvro {
			return nil, fmt.Errorf("schema id %d is %s, not Avro: %w", id, got.Type, errPermanent)
		}
		if len(got.References) > 0 {
			return nil, fmt.Errorf("schema id %d has references, which are not supported: %w", id, errPermanent)
		}
		text = got.Schema
	}
	sch, err := parseAvro(text)
	if err != nil {
		return nil, fmt.Errorf("schema id %d: %w: %w", id, err, errPermanent)
	}
	s.mu.Lock()
	s.byID[id] = sch
	s.mu.Unlock()
	return sch, nil
}

func isNotFound(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// encode turns a JSON payload for topic into Confluent wire-format Avro; model is the
// message's model (for the record subject strategies). It returns the schema used.
func (s *serde) encode(ctx context.Context, topic, model string, payload []byte) ([]byte, schemaInfo, error) {
	info, err := s.writerSchema(ctx, topic, model)
	if err != nil {
		return nil, info, err
	}
	v, err := jsonToAvro(info.schema, payload)
	if err != nil {
		return nil, info, fmt.Errorf("encode with schema %d (%s): %w", info.id, info.subject, err)
	}
	body, err := avro.Marshal(info.schema, v)
	if err != nil {
		return nil, info, fmt.Errorf("encode with schema %d (%s): %w", info.id, info.subject, err)
	}
	out := make([]byte, 5, 5+len(body))
	out[0] = wireMagic
	binary.BigEndian.PutUint32(out[1:5], uint32(info.id))
	return append(out, body...), info, nil
}

// decode turns a wire-format value of topic into its JSON payload. Errors wrapping
// errPermanent mean the value cannot be decoded, ever; others (the registry is
// unreachable) may pass.
func (s *serde) decode(ctx context.Context, topic string, value []byte) ([]byte, int, error) {
	if len(value) < 5 || value[0] != wireMagic {
		head := value
		if len(head) > 8 {
			head = head[:8]
		}
		return nil, 0, fmt.Errorf("value is not in Confluent wire format (want magic byte 0 and a 4-byte schema id, got % x): %w", head, errPermanent)
	}
	id := int(binary.BigEndian.Uint32(value[1:5]))
	writer, err := s.schemaByID(ctx, id, "")
	if err != nil {
		return nil, id, err
	}
	schema := writer
	if l, ok := s.local[topic]; ok {
		if schema, err = s.reader(topic, id, l, writer); err != nil {
			return nil, id, err
		}
	}
	var v any
	if err := avro.Unmarshal(schema, value[5:], &v); err != nil {
		return nil, id, fmt.Errorf("decode with schema %d: %w: %w", id, err, errPermanent)
	}
	out, err := avroToJSON(schema, v)
	if err != nil {
		return nil, id, fmt.Errorf("decode with schema %d: %w: %w", id, err, errPermanent)
	}
	return out, id, nil
}

// reader resolves the writer schema id to the topic's local schema.
func (s *serde) reader(topic string, id int, l localSchema, writer avro.Schema) (avro.Schema, error) {
	key := topic + "/" + strconv.Itoa(id)
	s.mu.Lock()
	r, ok := s.readers[key]
	s.mu.Unlock()
	if ok {
		return r, nil
	}
	if writer.Fingerprint() == l.schema.Fingerprint() {
		r = l.schema
	} else {
		var err error
		r, err = avro.NewSchemaCompatibility().Resolve(l.schema, writer)
		if err != nil {
			return nil, fmt.Errorf("schema id %d cannot be read with %s (schema_registry.schemas.%s): %w: %w", id, l.path, topic, err, errPermanent)
		}
	}
	s.mu.Lock()
	s.readers[key] = r
	s.mu.Unlock()
	return r, nil
}

// encodeAll encodes msgs for topic into wire-format copies (same UUID and metadata),
// or fails on the first that does not match its schema. It records the schema id in
// the metadata of the originals too, so the produced rows show it.
func (s *serde) encodeAll(topic string, msgs []*message.Message) ([]*message.Message, error) {
	out := make([]*message.Message, len(msgs))
	for i, m := range msgs {
		wire, info, err := s.encode(m.Context(), topic, m.Metadata.Get(modelevent.MetadataModel), m.Payload)
		if err != nil {
			if len(msgs) > 1 {
				return nil, fmt.Errorf("message %s: %w", m.UUID, err)
			}
			return nil, err
		}
		c := m.Copy()
		c.SetContext(m.Context())
		c.Payload = wire
		c.Metadata.Set(MetadataSchemaID, strconv.Itoa(info.id))
		out[i] = c
	}
	for i, m := range msgs {
		m.Metadata.Set(MetadataSchemaID, out[i].Metadata.Get(MetadataSchemaID))
	}
	return out, nil
}
