package outbox

import (
	stdsql "database/sql"
	"errors"
	"fmt"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
)

// NewTxPublisher returns a Watermill publisher that writes messages into the outbox
// table of cfg inside tx, the caller's transaction: they are forwarded to their topic
// by the relay once, and only if, tx commits. Each message is wrapped in Watermill's
// forwarder envelope (destination topic, UUID, payload, metadata) and inserted with
// watermill-sql's Publisher over tx; messages of one Publish keep their order. The
// table must exist (InitializeSchema): nothing is created inside tx. The publisher is
// valid as long as tx is; Close does not end tx.
func NewTxPublisher(tx *stdsql.Tx, cfg Config) (message.Publisher, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	if tx == nil {
		return nil, errors.New("outbox: publish: nil *sql.Tx")
	}
	schema, _ := newAdapters(cfg)
	pub, err := wsql.NewPublisher(wsql.TxFromStdSQL(tx), wsql.PublisherConfig{
		SchemaAdapter:        schema,
		AutoInitializeSchema: false,
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("outbox: publish: %w", err)
	}
	return forwarder.NewPublisher(pub, forwarder.PublisherConfig{ForwarderTopic: cfg.Table}), nil
}
