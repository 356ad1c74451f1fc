package modelevent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/go-eventbus/eventbus/internal/jsonfmt"
)

// The JSON encoding of the package's types, the one the console's API and the CLI's
// --json print (docs/api.md#json-conventions): times are RFC 3339 UTC with six
// fractional digits and left out when unset, durations are nanoseconds, strings
// without a value are left out, lists and objects are always present ([] or {}), and
// numbers and booleans always present.

// eventJSON is the JSON form of a ModelEvent.
type eventJSON struct {
	ID          string     `json:"id,omitempty"`
	MessageUUID string     `json:"message_uuid,omitempty"`
	Direction   Direction  `json:"direction,omitempty"`
	Topic       string     `json:"topic,omitempty"`
	Model       string     `json:"model,omitempty"`
	ObjectID    string     `json:"object_id,omitempty"`
	Change      ChangeType `json:"change,omitempty"`
	Handler     string     `json:"handler,omitempty"`
	Backend     string     `json:"backend,omitempty"`
	// Payload is set when the payload is a JSON value, PayloadBase64 otherwise.
	Payload       json.RawMessage   `json:"payload,omitempty"`
	PayloadBase64 []byte            `json:"payload_base64,omitempty"`
	Metadata      map[string]string `json:"metadata"`
	Status        Status            `json:"status,omitempty"`
	Attempts      int               `json:"attempts"`
	LastError     string            `json:"last_error,omitempty"`
	CorrelationID string            `json:"correlation_id,omitempty"`
	TraceID       string            `json:"trace_id,omitempty"`
	CreatedAt     jsonfmt.Time      `json:"created_at,omitzero"`
	UpdatedAt     jsonfmt.Time      `json:"updated_at,omitzero"`
	// Duplicates and History are there when History is not nil (Store.Get).
	Duplicates *int       `json:"duplicates,omitempty"`
	History    *[]Attempt `json:"history,omitempty"`
}

// jsonPayload reports whether p is written as JSON under "payload": a JSON value
// other than null, in valid UTF-8. Any other non-empty payload is base64 under
// "payload_base64".
func jsonPayload(p []byte) bool {
	return utf8.Valid(p) && json.Valid(p) && !bytes.Equal(bytes.TrimSpace(p), []byte("null"))
}

// MarshalJSON encodes e the way the console's API and the CLI print it
// (docs/api.md): a payload that is a JSON value is embedded as JSON under "payload",
// any other payload is base64 under "payload_base64" (an empty one is neither);
// metadata is always an object; unset times and empty strings are left out;
// "history" and "duplicates" are written when History is not nil (as Store.Get
// returns it), and left out of list rows, whose history is not read.
func (e ModelEvent) MarshalJSON() ([]byte, error) {
	out := eventJSON{
		ID: e.ID, MessageUUID: e.MessageUUID, Direction: e.Direction, Topic: e.Topic,
		Model: e.Model, ObjectID: e.ObjectID, Change: e.Change, Handler: e.Handler,
		Backend: e.Backend, Metadata: jsonfmt.Map(e.Metadata), Status: e.Status,
		Attempts: e.Attempts, LastError: e.LastError, CorrelationID: e.CorrelationID,
		TraceID: e.TraceID, CreatedAt: jsonfmt.Time(e.CreatedAt), UpdatedAt: jsonfmt.Time(e.UpdatedAt),
	}
	switch {
	case len(e.Payload) == 0:
	case jsonPayload(e.Payload):
		out.Payload = json.RawMessage(e.Payload)
	default:
		out.PayloadBase64 = e.Payload
	}
	if e.History != nil {
		d := e.Duplicates
		out.Duplicates, out.History = &d, &e.History
	}
	return json.Marshal(out)
}

// UnmarshalJSON decodes what MarshalJSON writes: a JSON "payload" becomes its
// (compacted) bytes, "payload_base64" the bytes it encodes; a "history" key, even an
// empty list, makes History not nil.
func (e *ModelEvent) UnmarshalJSON(b []byte) error {
	var in eventJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("modelevent: decode event: %w", err)
	}
	*e = ModelEvent{
		ID: in.ID, MessageUUID: in.MessageUUID, Direction: in.Direction, Topic: in.Topic,
		Model: in.Model, ObjectID: in.ObjectID, Change: in.Change, Handler: in.Handler,
		Backend: in.Backend, Metadata: in.Metadata, Status: in.Status, Attempts: in.Attempts,
		LastError: in.LastError, CorrelationID: in.CorrelationID, TraceID: in.TraceID,
		CreatedAt: timeOf(in.CreatedAt), UpdatedAt: timeOf(in.UpdatedAt),
	}
	switch {
	case len(in.Payload) > 0 && len(in.PayloadBase64) > 0:
		return fmt.Errorf("modelevent: decode event %s: both payload and payload_base64", in.ID)
	case len(in.Payload) > 0:
		var buf bytes.Buffer
		if err := json.Compact(&buf, in.Payload); err != nil {
			return fmt.Errorf("modelevent: decode event %s: payload: %w", in.ID, err)
		}
		e.Payload = buf.Bytes()
	case len(in.PayloadBase64) > 0:
		e.Payload = in.PayloadBase64
	}
	if in.History != nil {
		e.History = jsonfmt.List(*in.History)
	}
	if in.Duplicates != nil {
		e.Duplicates = *in.Duplicates
	}
	return nil
}

// timeOf is t in UTC; the zero time when t is not set.
func timeOf(t jsonfmt.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.Time(t).UTC()
}

// The other types of the package encode by jsonfmt.Marshal: their fields in order,
// under their tags' names, by the conventions above.

// MarshalJSON encodes a by the package's JSON conventions.
func (a Attempt) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(a) }

// MarshalJSON encodes p by the package's JSON conventions.
func (p Page) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(p) }

// MarshalJSON encodes s by the package's JSON conventions.
func (s Stats) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(s) }

// MarshalJSON encodes c by the package's JSON conventions.
func (c TopicCount) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(c) }

// MarshalJSON encodes s by the package's JSON conventions.
func (s Scheduled) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(s) }

// MarshalJSON encodes p by the package's JSON conventions.
func (p TimelinePoint) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(p) }

// MarshalJSON encodes h by the package's JSON conventions.
func (h HandlerLatency) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(h) }

// MarshalJSON encodes l by the package's JSON conventions.
func (l Lease) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(l) }

// MarshalJSON encodes m by the package's JSON conventions.
func (m MigrationState) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(m) }

// MarshalJSON encodes r by the package's JSON conventions.
func (r PruneResult) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(r) }
