package modelevent

import (
	"context"
	"errors"
	"time"
)

// Direction says whether an event was produced (published) or consumed by a handler.
type Direction string

// The directions of a ModelEvent.
const (
	Produced Direction = "produced"
	Consumed Direction = "consumed"
)

// Valid reports whether d is one of the known directions.
func (d Direction) Valid() bool { return d == Produced || d == Consumed }

// Status is where a ModelEvent stands.
type Status string

// The statuses of a ModelEvent. Consumed rows move pending → retrying → succeeded, or
// → failed → poisoned; produced rows end published or publish_failed.
const (
	StatusPending       Status = "pending"
	StatusRetrying      Status = "retrying"
	StatusSucceeded     Status = "succeeded"
	StatusFailed        Status = "failed"
	StatusPoisoned      Status = "poisoned"
	StatusPublished     Status = "published"
	StatusPublishFailed Status = "publish_failed"
	StatusScheduled     Status = "scheduled"
	StatusCancelled     Status = "cancelled"
)

// Statuses lists every status in display order.
var Statuses = []Status{
	StatusPending, StatusRetrying, StatusSucceeded, StatusFailed, StatusPoisoned,
	StatusPublished, StatusPublishFailed, StatusScheduled, StatusCancelled,
}

// Valid reports whether s is one of Statuses.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if v == s {
			return true
		}
	}
	return false
}

// Terminal reports whether no further attempt is expected for a row in status s.
func (s Status) Terminal() bool {
	switch s {
	case StatusSucceeded, StatusPoisoned, StatusPublished, StatusPublishFailed, StatusCancelled:
		return true
	}
	return false
}

// ChangeType says what happened to the object a model-change event is about. The
// constants are the common ones; a store keeps any value of at most 16 characters.
type ChangeType string

// The changes of a model-change event.
const (
	Created ChangeType = "created"
	Updated ChangeType = "updated"
	Deleted ChangeType = "deleted"
)

// ModelEvent is the record of one message in one direction for one handler: a produced
// message has one row, a consumed message one row per handler that consumed it. A
// redelivery of the same message to the same handler updates that row (Attempts grows)
// instead of adding a new one, so (MessageUUID, Direction, Handler) is unique (a
// produced row has no Handler, a consumed row always has one).
//
// Its JSON encoding (MarshalJSON in json.go) is the one the console's API and the
// CLI's --json print, under the names of the tags below: a JSON payload is embedded as
// JSON under "payload", other bytes are base64 under "payload_base64".
type ModelEvent struct {
	// ID is sortable by creation time (a ULID).
	ID string `json:"id"`
	// MessageUUID is the Watermill message UUID.
	MessageUUID string `json:"message_uuid"`
	// Direction is produced or consumed.
	Direction Direction `json:"direction"`
	// Topic is the topic the message was published to or consumed from.
	Topic string `json:"topic"`
	// Model names what the event is about, e.g. "shop.Order".
	Model string `json:"model,omitempty"`
	// ObjectID identifies the object of Model the event is about, e.g. the order's
	// primary key "42"; empty when the event is not about one object.
	ObjectID string `json:"object_id,omitempty"`
	// Change says what happened to the object: created, updated, deleted, or empty.
	Change ChangeType `json:"change,omitempty"`
	// Handler is the consumer's name; empty for produced rows.
	Handler string `json:"handler,omitempty"`
	// Backend is the name of the broker backend, e.g. "memory" or "kafka".
	Backend string `json:"backend"`
	// Payload is the message payload as sent.
	Payload []byte `json:"payload"`
	// Metadata is the message metadata as sent.
	Metadata map[string]string `json:"metadata"`
	// Status is where the row stands.
	Status Status `json:"status"`
	// Attempts counts handler runs (consumed) or publish attempts (produced).
	Attempts int `json:"attempts"`
	// LastError is the most recent error, kept after a later success.
	LastError string `json:"last_error,omitempty"`
	// CorrelationID ties together the events of one business flow.
	CorrelationID string `json:"correlation_id,omitempty"`
	// TraceID is the W3C trace id (32 hex digits) of the trace the message travelled
	// in, empty when it carried none.
	TraceID string `json:"trace_id,omitempty"`
	// CreatedAt is when the row was first written.
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is when the row was last written.
	UpdatedAt time.Time `json:"updated_at"`
	// Duplicates counts the deliveries of the message to this consumer that were acked
	// without running the handler because the row had already succeeded (an idempotent
	// consumer, see bus.ConsumerOptions). It is filled by Store.Get only.
	Duplicates int `json:"duplicates,omitempty"`
	// History holds the attempts, oldest first. It is filled by Store.Get only.
	History []Attempt `json:"history,omitempty"`
}

// Attempt is one run of a handler on a message (or one publish), with its outcome.
type Attempt struct {
	// StartedAt is when the attempt started.
	StartedAt time.Time `json:"started_at"`
	// Duration is how long the attempt ran.
	Duration time.Duration `json:"duration"`
	// Error is the attempt's error; empty when it succeeded.
	Error string `json:"error,omitempty"`
}

// Change is one write of a ModelEvent, the unit a Store applies and listeners receive.
// Event carries the row's new state; Event.Attempts counts the attempts this change adds
// (stores add it to the stored count), and NewAttempts lists them. On the first write of
// a row Event.ID becomes the row's id; later writes of the same (MessageUUID, Direction,
// Handler) keep the stored id and CreatedAt, add the attempts, and replace Status,
// UpdatedAt and, when Event.LastError is not empty, LastError.
type Change struct {
	Event       ModelEvent
	NewAttempts []Attempt
}

// Filter selects ModelEvents. The zero Filter selects everything.
type Filter struct {
	Direction Direction
	Statuses  []Status
	Topic     string
	Model     string
	// ObjectID selects the events about one object; with Model it is an index lookup:
	// Filter{Model: "shop.Order", ObjectID: "42"} is every event about order 42.
	ObjectID string
	// Change selects one kind of change.
	Change  ChangeType
	Handler string
	// CorrelationID selects the rows of one business flow.
	CorrelationID string
	// MessageUUID selects the rows of one message.
	MessageUUID string
	// TraceID selects the rows of one trace.
	TraceID string
	// Since and Until bound CreatedAt: Since inclusive, Until exclusive.
	Since, Until time.Time
	// Text matches a substring of the id, message UUID, payload or last error.
	Text string
}

// ListOptions pages through a List.
type ListOptions struct {
	// Limit is the page size; 0 means 50, and it is capped at 1000.
	Limit int
	// Cursor is the NextCursor of the previous page; empty for the first page.
	Cursor string
}

// Page is one page of a List, newest first.
type Page struct {
	Events []ModelEvent `json:"events"`
	// NextCursor is empty on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// Stats counts ModelEvents.
type Stats struct {
	Total    int64            `json:"total"`
	ByStatus map[Status]int64 `json:"by_status"`
	ByTopic  []TopicCount     `json:"by_topic"`
}

// TopicCount counts the rows of one topic and direction by status.
type TopicCount struct {
	Topic     string           `json:"topic"`
	Direction Direction        `json:"direction"`
	Total     int64            `json:"total"`
	ByStatus  map[Status]int64 `json:"by_status"`
}

// ErrNotFound is returned for an unknown id: by Store.Get for an event, and by the
// control plane for a process or a command.
var ErrNotFound = errors.New("eventbus: not found")

// Store keeps ModelEvents. Implementations are safe for concurrent use.
type Store interface {
	// Write applies changes atomically, in order: either all are stored or none.
	Write(ctx context.Context, changes []Change) error
	// Get returns one event with its History, or an error wrapping ErrNotFound.
	Get(ctx context.Context, id string) (ModelEvent, error)
	// List returns the events matching f, newest first, one page at a time.
	// History is not filled.
	List(ctx context.Context, f Filter, opts ListOptions) (Page, error)
	// Stats counts the events matching f.
	Stats(ctx context.Context, f Filter) (Stats, error)
	// Close releases the store's resources.
	Close() error
}
