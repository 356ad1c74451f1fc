package outbox

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/go-eventbus/eventbus/modelevent"
)

// Dialects lists the accepted values of Config.Dialect: the store's dialects
// (modelevent.DialectSQLite, modelevent.DialectPostgres, modelevent.DialectMySQL).
var Dialects = []string{modelevent.DialectSQLite, modelevent.DialectPostgres, modelevent.DialectMySQL}

// Defaults of Config.
const (
	DefaultTable            = "eventbus_outbox"
	DefaultBatchSize        = 100
	DefaultPollInterval     = 100 * time.Millisecond
	DefaultRetryInterval    = 500 * time.Millisecond
	DefaultMaxRetryInterval = 30 * time.Second
)

// Config configures the outbox table and the relay that empties it. The zero Config
// with a Dialect is valid.
type Config struct {
	// Dialect is the database of the outbox table: sqlite, postgres or mysql (MySQL or
	// MariaDB). Required.
	Dialect string `yaml:"dialect"`
	// Table names the outbox table, default "eventbus_outbox". It is also the
	// Watermill topic the forwarder reads. Letters, digits and _ only, at most 63.
	Table string `yaml:"table"`
	// BatchSize caps the messages the relay reads in one query. Default 100.
	BatchSize int `yaml:"batch_size"`
	// PollInterval is how long the relay waits before querying again when the table
	// is empty. Default 100ms.
	PollInterval time.Duration `yaml:"poll_interval"`
	// RetryInterval is the first wait after a failed publish to the broker; it doubles
	// per failure up to MaxRetryInterval. Default 500ms.
	RetryInterval time.Duration `yaml:"retry_interval"`
	// MaxRetryInterval bounds the wait between publish attempts. Default 30s.
	MaxRetryInterval time.Duration `yaml:"max_retry_interval"`
}

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

func (c *Config) setDefaults() {
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = DefaultRetryInterval
	}
	if c.MaxRetryInterval <= 0 {
		c.MaxRetryInterval = DefaultMaxRetryInterval
	}
	if c.MaxRetryInterval < c.RetryInterval {
		c.MaxRetryInterval = c.RetryInterval
	}
}

// Validate reports the first mistake in c (after defaults), naming the key.
func (c Config) Validate() error {
	switch c.Dialect {
	case modelevent.DialectSQLite, modelevent.DialectPostgres, modelevent.DialectMySQL:
	case "":
		return fmt.Errorf("outbox.dialect: must be set (accepted: %s)", strings.Join(Dialects, ", "))
	default:
		return fmt.Errorf("outbox.dialect: unknown dialect %q (accepted: %s)", c.Dialect, strings.Join(Dialects, ", "))
	}
	if c.Table != "" && !tableName.MatchString(c.Table) {
		return fmt.Errorf("outbox.table: %q is not a table name (letters, digits and _, at most 63, not starting with a digit)", c.Table)
	}
	if c.BatchSize < 0 {
		return fmt.Errorf("outbox.batch_size: must be ≥ 1, got %d", c.BatchSize)
	}
	return nil
}

// withDefaults returns c with defaults applied, validated.
func (c Config) withDefaults() (Config, error) {
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}
