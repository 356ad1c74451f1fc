// Package outboxlink lets package bus use the transactional outbox without importing
// package outbox, which links watermill-sql and, through it, lib/pq and pgx. Package
// outbox registers itself here from init; a program that never imports it (and so never
// calls PublishTx or sets outbox.enabled) links none of that.
package outboxlink

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/modelevent"
)

// Import is the import that links the outbox into a program.
const Import = "github.com/go-eventbus/eventbus/outbox"

// ErrNotLinked is returned by New when package outbox is not linked into the program.
var ErrNotLinked = errors.New(`the outbox is not linked into this program: add import _ "` + Import + `"`)

// RelayOptions is outbox.RelayOptions as the bus passes it.
type RelayOptions struct {
	Publisher message.Publisher
	Record    func(ctx context.Context, changes ...modelevent.Change) error
	Backend   string
	Logger    *slog.Logger
}

// Relay is the part of *outbox.Relay the bus runs.
type Relay interface {
	Run(ctx context.Context) error
	Close() error
}

// Outbox is one outbox table, as package outbox implements it.
type Outbox interface {
	// InitializeSchema creates the table in db if it does not exist.
	InitializeSchema(ctx context.Context, db *sql.DB) error
	// NewTxPublisher returns a publisher that writes into the table inside tx.
	NewTxPublisher(tx *sql.Tx) (message.Publisher, error)
	// NewRelay returns the relay of the table in db.
	NewRelay(ctx context.Context, db *sql.DB, opts RelayOptions) (Relay, error)
}

// NewFunc validates cfg and returns its outbox.
type NewFunc func(cfg Config) (Outbox, error)

var newOutbox NewFunc

// Register is called by package outbox's init. It panics if called twice or with nil.
func Register(f NewFunc) {
	if f == nil || newOutbox != nil {
		panic("outboxlink: Register called twice or with nil")
	}
	newOutbox = f
}

// Linked reports whether package outbox is linked into the program.
func Linked() bool { return newOutbox != nil }

// New returns the outbox of cfg, or ErrNotLinked.
func New(cfg Config) (Outbox, error) {
	if newOutbox == nil {
		return nil, ErrNotLinked
	}
	return newOutbox(cfg)
}
