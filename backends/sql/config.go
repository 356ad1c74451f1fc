package sqlbackend

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/go-eventbus/eventbus/modelevent"
)

// The drivers accepted by Config.Driver: the names of the store's dialects.
const (
	DriverPostgres = modelevent.DialectPostgres
	DriverMySQL    = modelevent.DialectMySQL
)

// Drivers lists the accepted values of the driver setting.
var Drivers = []string{DriverPostgres, DriverMySQL}

// The defaults of Config.
const (
	DefaultPollInterval   = 100 * time.Millisecond
	DefaultResendInterval = time.Second
	DefaultRetryInterval  = time.Second
	DefaultBatchSize      = 100
	DefaultTablePrefix    = "eventbus_"
	DefaultConnectTimeout = 10 * time.Second
	DefaultAckDeadline    = 30 * time.Second
	DefaultMaxConns       = 32
)

// Config configures the sql backend. It is decoded from backend_settings by
// bus.DecodeSettings; the zero value of every field but Driver and DSN means its default.
type Config struct {
	// Driver is the database: postgres (PostgreSQL, through pgx v5) or mysql (MySQL or
	// MariaDB, through go-sql-driver). Required.
	Driver string `yaml:"driver"`
	// DSN is the data source name: a pgx URL or keyword/value string for postgres, a
	// go-sql-driver DSN ("user:pass@tcp(host:3306)/db") for mysql. Required.
	DSN string `yaml:"dsn"`
	// ConsumerGroupPrefix is put before every consumer name to make its watermill-sql
	// consumer group; processes using the same consumer name and prefix share its
	// messages. Default "" (the group is the consumer name).
	ConsumerGroupPrefix string `yaml:"consumer_group_prefix"`
	// PollInterval is how long a subscriber waits before querying again when it found no
	// message. Default 100ms (watermill-sql's own default is 1s).
	PollInterval time.Duration `yaml:"poll_interval"`
	// ResendInterval is how long a subscriber waits before delivering a nacked message
	// again. Default 1s.
	ResendInterval time.Duration `yaml:"resend_interval"`
	// RetryInterval is how long a subscriber waits after a database error before querying
	// again. Default 1s.
	RetryInterval time.Duration `yaml:"retry_interval"`
	// BatchSize is the number of messages a subscriber fetches per query; their offsets
	// are committed together after the last is acked, so a crash redelivers at most one
	// batch. Default 100.
	BatchSize int `yaml:"batch_size"`
	// AckDeadline bounds how long one delivered message may stay unacked before it is
	// given up and delivered again (the subscriber's transaction stays open meanwhile).
	// Default 30s.
	AckDeadline time.Duration `yaml:"ack_deadline"`
	// InitializeSchema creates the tables of a topic (CREATE TABLE IF NOT EXISTS) the
	// first time it is published to or subscribed. Default true; set false when the
	// tables are created by a migration tool (see Backend.InitializeTopic).
	InitializeSchema *bool `yaml:"initialize_schema"`
	// TablePrefix starts the name of every table: messages of topic T live in
	// <prefix>messages_T and consumer offsets in <prefix>offsets_T. Letters, digits and
	// "_" only. Default "eventbus_".
	TablePrefix string `yaml:"table_prefix"`
	// ConnectTimeout bounds connecting to the database, at New and on every new
	// connection. Default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxConns caps the open connections. Each consumer holds one while it handles a
	// batch, and the publisher needs one per concurrent Publish. Default 32.
	MaxConns int `yaml:"max_conns"`
}

var tablePrefixRe = regexp.MustCompile(`^[A-Za-z0-9_]*$`)

func (c *Config) setDefaults() {
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.ResendInterval == 0 {
		c.ResendInterval = DefaultResendInterval
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = DefaultRetryInterval
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.AckDeadline == 0 {
		c.AckDeadline = DefaultAckDeadline
	}
	if c.InitializeSchema == nil {
		t := true
		c.InitializeSchema = &t
	}
	if c.TablePrefix == "" {
		c.TablePrefix = DefaultTablePrefix
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
}

// Validate reports the first mistake in c, naming the setting and the fix. It expects
// defaults to be applied (New does that).
func (c Config) Validate() error {
	if c.Driver == "" {
		return fmt.Errorf("backend_settings.driver: must be set (accepted: %s)", strings.Join(Drivers, ", "))
	}
	if c.Driver == "sqlite" {
		return fmt.Errorf("backend_settings.driver: driver \"sqlite\" is not yet supported (accepted: %s)", strings.Join(Drivers, ", "))
	}
	if !validDriver(c.Driver) {
		return fmt.Errorf("backend_settings.driver: unknown driver %q (accepted: %s)", c.Driver, strings.Join(Drivers, ", "))
	}
	if strings.TrimSpace(c.DSN) == "" {
		return fmt.Errorf("backend_settings.dsn: must be set for driver %s (e.g. %s)", c.Driver, exampleDSN(c.Driver))
	}
	if err := checkDSN(c.Driver, c.DSN); err != nil {
		return err
	}
	if !tablePrefixRe.MatchString(c.TablePrefix) {
		return fmt.Errorf("backend_settings.table_prefix: %q may hold only letters, digits and _", c.TablePrefix)
	}
	if len(c.TablePrefix) > 30 {
		return fmt.Errorf("backend_settings.table_prefix: %q is longer than 30 characters", c.TablePrefix)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"poll_interval", c.PollInterval}, {"resend_interval", c.ResendInterval}, {"retry_interval", c.RetryInterval}, {"ack_deadline", c.AckDeadline}, {"connect_timeout", c.ConnectTimeout}} {
		if d.v <= 0 {
			return fmt.Errorf("backend_settings.%s: must be a positive duration such as \"100ms\", got %v", d.key, d.v)
		}
	}
	if c.BatchSize < 1 {
		return fmt.Errorf("backend_settings.batch_size: must be ≥ 1, got %d", c.BatchSize)
	}
	if c.MaxConns < 2 {
		return fmt.Errorf("backend_settings.max_conns: must be ≥ 2 (a consumer's transaction and a publish), got %d", c.MaxConns)
	}
	return nil
}

func validDriver(d string) bool {
	for _, v := range Drivers {
		if v == d {
			return true
		}
	}
	return false
}

func exampleDSN(driver string) string {
	switch driver {
	case DriverMySQL:
		return `"user:password@tcp(127.0.0.1:3306)/app"`
	default:
		return `"postgres://user:password@127.0.0.1:5432/app?sslmode=disable"`
	}
}

// checkDSN parses dsn for driver without connecting.
func checkDSN(driver, dsn string) error {
	switch driver {
	case DriverMySQL:
		if _, err := mysql.ParseDSN(dsn); err != nil {
			return fmt.Errorf("backend_settings.dsn: %q is not a MySQL DSN (want e.g. %s): %v", RedactDSN(driver, dsn), exampleDSN(driver), redactErr(err, dsn))
		}
	case DriverPostgres:
		if strings.Contains(dsn, "://") {
			u, err := url.Parse(dsn)
			if err != nil {
				return fmt.Errorf("backend_settings.dsn: %q is not a PostgreSQL URL (want e.g. %s)", RedactDSN(driver, dsn), exampleDSN(driver))
			}
			if u.Scheme != "postgres" && u.Scheme != "postgresql" {
				return fmt.Errorf("backend_settings.dsn: scheme %q is not postgres:// or postgresql:// (want e.g. %s)", u.Scheme, exampleDSN(driver))
			}
		}
	}
	return nil
}

var keywordPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// RedactDSN returns dsn with its password replaced by "xxxxx", for logs and errors.
func RedactDSN(driver, dsn string) string {
	switch driver {
	case DriverMySQL:
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			// user:pass@... — cut what sits between the first ':' and the last '@'.
			if at := strings.LastIndex(dsn, "@"); at > 0 {
				if colon := strings.Index(dsn[:at], ":"); colon >= 0 {
					return dsn[:colon+1] + "xxxxx" + dsn[at:]
				}
			}
			return dsn
		}
		if cfg.Passwd != "" {
			cfg.Passwd = "xxxxx"
		}
		return cfg.FormatDSN()
	default:
		if strings.Contains(dsn, "://") {
			if u, err := url.Parse(dsn); err == nil {
				q := u.Query()
				if q.Has("password") {
					q.Set("password", "xxxxx")
					u.RawQuery = q.Encode()
				}
				return u.Redacted()
			}
			if at := strings.LastIndex(dsn, "@"); at > 0 {
				start := strings.Index(dsn, "://") + 3
				if colon := strings.Index(dsn[start:at], ":"); colon >= 0 {
					return dsn[:start+colon+1] + "xxxxx" + dsn[at:]
				}
			}
			return dsn
		}
		return keywordPassword.ReplaceAllString(dsn, "${1}xxxxx")
	}
}

// redactErr returns err's text with any occurrence of dsn's password removed.
func redactErr(err error, dsn string) string {
	s := err.Error()
	if cfg, perr := mysql.ParseDSN(dsn); perr == nil && cfg.Passwd != "" {
		s = strings.ReplaceAll(s, cfg.Passwd, "xxxxx")
	}
	if u, perr := url.Parse(dsn); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			s = strings.ReplaceAll(s, p, "xxxxx")
		}
	}
	return s
}
