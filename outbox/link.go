package outbox

import (
	"context"
	stdsql "database/sql"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/internal/outboxlink"
)

// Importing this package enables the bus's outbox (bus.Outbox, Bus.PublishTx,
// outbox.enabled): package bus reaches it through internal/outboxlink, so programs
// that do not import it link no watermill-sql.
func init() {
	outboxlink.Register(func(cfg Config) (outboxlink.Outbox, error) {
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		return linked{cfg}, nil
	})
}

// linked is an outbox table as package bus uses it.
type linked struct{ cfg Config }

func (l linked) InitializeSchema(ctx context.Context, db *stdsql.DB) error {
	return InitializeSchema(ctx, db, l.cfg)
}

func (l linked) NewTxPublisher(tx *stdsql.Tx) (message.Publisher, error) {
	return NewTxPublisher(tx, l.cfg)
}

func (l linked) NewRelay(ctx context.Context, db *stdsql.DB, o outboxlink.RelayOptions) (outboxlink.Relay, error) {
	r, err := NewRelay(ctx, db, l.cfg, RelayOptions{Publisher: o.Publisher, Record: o.Record, Backend: o.Backend, Logger: o.Logger})
	if err != nil {
		return nil, err // not a nil *Relay in a non-nil interface
	}
	return r, nil
}
