package nats

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-eventbus/eventbus/backends/nats/internal/embedlink"
)

// The defaults of Config.
const (
	DefaultURL = "nats://127.0.0.1:4222"
	// DefaultSubscribersCount is 16 subscriptions per consumer and process, so 16
	// messages are in flight and durable recording commits their rows together (see
	// Config.SubscribersCount). Set 1 to keep publish order.
	DefaultSubscribersCount = 16
	DefaultAckWait          = 30 * time.Second
	DefaultMaxAckPending    = 256
	DefaultConnectTimeout   = 10 * time.Second
	DefaultReconnectWait    = 2 * time.Second
	DefaultMaxReconnects    = -1
	DefaultStoreDir         = "eventbus-nats"
	DefaultStorage          = "file"
	DefaultDeliverPolicy    = "all"
)

// Config configures the nats backend. It is decoded from backend_settings by the
// registered factory (unknown keys are errors) and can be built in Go for New. The zero
// Config connects to DefaultURL.
type Config struct {
	// URL is the NATS server, or comma-separated servers of one cluster
	// ("nats://a:4222,nats://b:4222"); schemes nats, tls, ws, wss; a bare host:port
	// means nats://. User and password may be in the URL. Default DefaultURL. Must be
	// empty with Embedded.
	URL string `yaml:"url"`

	// SubjectPrefix is put before a topic to make its NATS subject. Default "": the
	// subject is the topic (topics must then be valid subjects: no spaces, '*' or '>').
	SubjectPrefix string `yaml:"subject_prefix"`
	// StreamPrefix is put before the sanitized topic to name its JetStream stream (see
	// StreamName). Default "".
	StreamPrefix string `yaml:"stream_prefix"`
	// DurablePrefix is put before the sanitized consumer name to name its durable
	// JetStream consumer. Default "".
	DurablePrefix string `yaml:"durable_prefix"`
	// QueueGroupPrefix is put before the sanitized consumer name to name its queue
	// group, shared by every process that runs the consumer. Default "".
	QueueGroupPrefix string `yaml:"queue_group_prefix"`

	// SubscribersCount is the number of parallel subscriptions per consumer in this
	// process (members of the consumer's queue group). Each handles one message at a
	// time and takes the next only after its ack is confirmed by JetStream, so it is
	// also how many messages of the consumer this process handles at once: with
	// durable recording, throughput is about SubscribersCount rows per store commit.
	// Default 16 (DefaultSubscribersCount): messages are handled in parallel and in no
	// particular order. Set 1 for publish order (per process; across processes there
	// is none). Keep MaxAckPending ≥ SubscribersCount × processes.
	SubscribersCount int `yaml:"subscribers_count"`
	// AckWait is how long JetStream waits for a delivered message's ack before it
	// delivers it again; a handler (with its retries) must finish within it. Default 30s.
	AckWait time.Duration `yaml:"ack_wait"`
	// MaxAckPending caps the messages delivered to a consumer and not yet acked, across
	// every process of the consumer. Default 256.
	MaxAckPending int `yaml:"max_ack_pending"`
	// DeliverPolicy is where a new consumer starts: "all" (default: every message the
	// stream still holds) or "new" (only messages published after it was created).
	DeliverPolicy string `yaml:"deliver_policy"`
	// AutoProvision creates a missing stream for a topic on first use. Default true.
	// When false the streams must exist, and the stream of a topic is the one whose
	// subjects cover the topic's subject, whatever its name.
	AutoProvision *bool `yaml:"auto_provision"`
	// Storage of provisioned streams: "file" (default) or "memory".
	Storage string `yaml:"storage"`
	// Replicas of provisioned streams (clustered JetStream). Default 1.
	Replicas int `yaml:"replicas"`
	// MaxAge drops messages older than this from provisioned streams. Default 0: kept
	// until the stream's other limits (none by default) drop them.
	MaxAge time.Duration `yaml:"max_age"`
	// TrackMsgID sends the message UUID as Nats-Msg-Id, so JetStream drops a message
	// published again with the same UUID within the stream's duplicate window (2 min):
	// a publish retried after a timeout is stored once. Default true.
	TrackMsgID *bool `yaml:"track_msg_id"`

	// CredentialsFile is a NATS .creds file (user JWT and nkey seed).
	CredentialsFile string `yaml:"credentials_file"`
	// NkeySeedFile is a file holding an nkey seed ("SU…") to authenticate with.
	NkeySeedFile string `yaml:"nkey_seed_file"`
	// Username and Password authenticate with user and password.
	Username string `yaml:"username"`
	// Password goes with Username.
	Password string `yaml:"password"`
	// Token authenticates with a token.
	Token string `yaml:"token"`
	// TLS configures TLS to the server; any field set turns TLS on.
	TLS TLSConfig `yaml:"tls"`

	// ConnectTimeout bounds connecting to each server and the JetStream check at start.
	// Default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// ReconnectWait is the pause between reconnect attempts after the connection is
	// lost. Default 2s.
	ReconnectWait time.Duration `yaml:"reconnect_wait"`
	// MaxReconnects is how many reconnect attempts are made before a connection gives
	// up; -1 (default) never gives up, 0 never reconnects.
	MaxReconnects *int `yaml:"max_reconnects"`

	// Embedded starts a NATS server with JetStream inside this process (no external
	// service) and connects to it; Close shuts it down. Messages persist in StoreDir.
	Embedded bool `yaml:"embedded"`
	// StoreDir is the embedded server's JetStream directory. Default "eventbus-nats".
	StoreDir string `yaml:"store_dir"`
	// Port is the embedded server's port on 127.0.0.1. Default 0: a free port is
	// chosen at start and kept across restarts of the server by this backend.
	Port int `yaml:"port"`
}

// TLSConfig configures TLS to the NATS server.
type TLSConfig struct {
	// CAFile is a PEM file of the CAs that sign the server certificate. Default: the
	// system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile is the PEM client certificate, for mutual TLS; needs KeyFile.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `yaml:"key_file"`
	// InsecureSkipVerify accepts any server certificate. For tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

func (t TLSConfig) enabled() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.InsecureSkipVerify
}

// autoProvision reports the effective AutoProvision.
func (c Config) autoProvision() bool { return c.AutoProvision == nil || *c.AutoProvision }

// trackMsgID reports the effective TrackMsgID.
func (c Config) trackMsgID() bool { return c.TrackMsgID == nil || *c.TrackMsgID }

// maxReconnects reports the effective MaxReconnects.
func (c Config) maxReconnects() int {
	if c.MaxReconnects == nil {
		return DefaultMaxReconnects
	}
	return *c.MaxReconnects
}

func (c *Config) setDefaults() {
	if c.URL == "" && !c.Embedded {
		c.URL = DefaultURL
	}
	if c.SubscribersCount == 0 {
		c.SubscribersCount = DefaultSubscribersCount
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.DeliverPolicy == "" {
		c.DeliverPolicy = DefaultDeliverPolicy
	}
	if c.Storage == "" {
		c.Storage = DefaultStorage
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = DefaultReconnectWait
	}
	if c.Embedded && c.StoreDir == "" {
		c.StoreDir = DefaultStoreDir
	}
}

// Validate reports the first invalid setting, naming its key under backend_settings
// and how to fix it. It expects defaults to be applied (New does both).
func (c Config) Validate() error {
	if c.Embedded {
		if c.URL != "" {
			return errors.New("backend_settings.url: not used with embedded: true (the backend connects to its own server); remove url, or set embedded: false")
		}
		if c.Port < 0 || c.Port > 65535 {
			return fmt.Errorf("backend_settings.port: %d is not a port (want 1-65535, or 0 for a free one)", c.Port)
		}
		if c.CredentialsFile != "" || c.NkeySeedFile != "" {
			return errors.New("backend_settings.credentials_file/nkey_seed_file: not yet supported with embedded: true; use username/password or token")
		}
		if c.TLS.enabled() {
			return errors.New("backend_settings.tls: not yet supported with embedded: true (the embedded server listens on 127.0.0.1 only)")
		}
		if c.Replicas != 1 {
			return fmt.Errorf("backend_settings.replicas: the embedded server is a single node, so replicas must be 1, got %d", c.Replicas)
		}
		if !embedlink.Linked() {
			return errEmbeddedNotLinked
		}
	} else {
		if c.StoreDir != "" {
			return errors.New("backend_settings.store_dir: only used with embedded: true; remove it or set embedded: true")
		}
		if c.Port != 0 {
			return errors.New("backend_settings.port: only used with embedded: true; put the port in url instead")
		}
		if _, err := parseURLs(c.URL); err != nil {
			return err
		}
	}
	if c.SubscribersCount < 1 {
		return fmt.Errorf("backend_settings.subscribers_count: must be ≥ 1, got %d", c.SubscribersCount)
	}
	if c.AckWait < time.Second {
		return fmt.Errorf("backend_settings.ack_wait: must be at least 1s, got %s", c.AckWait)
	}
	if c.MaxAckPending < 1 && c.MaxAckPending != -1 {
		return fmt.Errorf("backend_settings.max_ack_pending: must be ≥ 1 (or -1 for no limit), got %d", c.MaxAckPending)
	}
	if c.DeliverPolicy != "all" && c.DeliverPolicy != "new" {
		return fmt.Errorf("backend_settings.deliver_policy: %q is not accepted (accepted: all, new)", c.DeliverPolicy)
	}
	if c.Storage != "file" && c.Storage != "memory" {
		return fmt.Errorf("backend_settings.storage: %q is not accepted (accepted: file, memory)", c.Storage)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("backend_settings.replicas: must be 1 to 5, got %d", c.Replicas)
	}
	if c.maxReconnects() < -1 {
		return fmt.Errorf("backend_settings.max_reconnects: must be ≥ 0, or -1 to retry forever, got %d", c.maxReconnects())
	}
	if c.ConnectTimeout <= 0 {
		return fmt.Errorf("backend_settings.connect_timeout: must be > 0, got %s", c.ConnectTimeout)
	}
	if strings.ContainsAny(c.SubjectPrefix, " \t\r\n*>") {
		return fmt.Errorf("backend_settings.subject_prefix: %q may not contain spaces, '*' or '>'", c.SubjectPrefix)
	}
	for _, kv := range [][2]string{{"stream_prefix", c.StreamPrefix}, {"durable_prefix", c.DurablePrefix}, {"queue_group_prefix", c.QueueGroupPrefix}} {
		if strings.ContainsAny(kv[1], " \t\r\n.*>/\\~") {
			return fmt.Errorf("backend_settings.%s: %q may not contain spaces, '.', '*', '>', '/', '\\' or '~' (NATS names)", kv[0], kv[1])
		}
	}
	auth := 0
	for _, set := range []bool{c.CredentialsFile != "", c.NkeySeedFile != "", c.Username != "" || c.Password != "", c.Token != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		return errors.New("backend_settings: set only one of credentials_file, nkey_seed_file, username/password, token")
	}
	if c.Password != "" && c.Username == "" {
		return errors.New("backend_settings.username: required with password")
	}
	for _, kv := range [][2]string{{"credentials_file", c.CredentialsFile}, {"nkey_seed_file", c.NkeySeedFile}, {"tls.ca_file", c.TLS.CAFile}, {"tls.cert_file", c.TLS.CertFile}, {"tls.key_file", c.TLS.KeyFile}} {
		if kv[1] == "" {
			continue
		}
		if _, err := os.Stat(kv[1]); err != nil {
			return fmt.Errorf("backend_settings.%s: %w", kv[0], err)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return errors.New("backend_settings.tls: cert_file and key_file go together; set both or neither")
	}
	return nil
}

// parseURLs splits and checks a comma-separated list of server URLs.
func parseURLs(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "://") {
			part = "nats://" + part
		}
		u, err := url.Parse(part)
		if err != nil {
			return nil, fmt.Errorf("backend_settings.url: %q is not a URL (want e.g. nats://127.0.0.1:4222): %v", redact(part), err)
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return nil, fmt.Errorf("backend_settings.url: scheme %q in %q is not accepted (accepted: nats, tls, ws, wss)", u.Scheme, u.Redacted())
		}
		if u.Hostname() == "" {
			return nil, fmt.Errorf("backend_settings.url: %q has no host (want e.g. nats://127.0.0.1:4222)", u.Redacted())
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("backend_settings.url: %q has a bad port %q (want 1-65535)", u.Redacted(), p)
			}
		}
		if _, _, err := net.SplitHostPort(u.Host); err != nil && u.Port() != "" {
			return nil, fmt.Errorf("backend_settings.url: %q: %v", u.Redacted(), err)
		}
		out = append(out, u.String())
	}
	if len(out) == 0 {
		return nil, errors.New("backend_settings.url: empty (want e.g. nats://127.0.0.1:4222, or embedded: true)")
	}
	return out, nil
}

// redact hides a password in a URL that did not parse.
func redact(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "xxxxx" + s[i:]
		}
	}
	return s
}

// redactedURLs returns the URLs for messages, passwords hidden.
func redactedURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, s := range urls {
		if u, err := url.Parse(s); err == nil {
			out[i] = u.Redacted()
		} else {
			out[i] = redact(s)
		}
	}
	return strings.Join(out, ",")
}
