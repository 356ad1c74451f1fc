package outbox

import "github.com/go-eventbus/eventbus/internal/outboxlink"

// Config configures the outbox table and the relay that empties it. The zero Config
// with a Dialect is valid. Its keys are those of the bus's outbox: section:
//
//	Dialect          string        `yaml:"dialect"`            // sqlite, postgres or mysql (MySQL or MariaDB); required
//	Table            string        `yaml:"table"`              // default "eventbus_outbox"; also the forwarder's topic; letters, digits, _, at most 63
//	BatchSize        int           `yaml:"batch_size"`         // messages the relay reads in one query; default 100
//	PollInterval     time.Duration `yaml:"poll_interval"`      // wait before querying an empty table again; default 100ms
//	RetryInterval    time.Duration `yaml:"retry_interval"`     // first wait after a failed publish, doubling; default 500ms
//	MaxRetryInterval time.Duration `yaml:"max_retry_interval"` // bound of that wait; default 30s
//
// Validate reports the first mistake, naming the key; WithDefaults returns the Config
// with defaults applied, validated. The type is defined in an internal package so that
// package bus can embed it (bus.OutboxConfig) without linking this one.
type Config = outboxlink.Config

// Dialects lists the accepted values of Config.Dialect: the store's dialects
// (modelevent.DialectSQLite, modelevent.DialectPostgres, modelevent.DialectMySQL).
var Dialects = outboxlink.Dialects

// Defaults of Config.
const (
	DefaultTable            = outboxlink.DefaultTable
	DefaultBatchSize        = outboxlink.DefaultBatchSize
	DefaultPollInterval     = outboxlink.DefaultPollInterval
	DefaultRetryInterval    = outboxlink.DefaultRetryInterval
	DefaultMaxRetryInterval = outboxlink.DefaultMaxRetryInterval
)
