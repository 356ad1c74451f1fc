package control

import (
	"github.com/go-eventbus/eventbus/internal/jsonfmt"
	"github.com/go-eventbus/eventbus/modelevent"
)

// The JSON encoding of the package's types, the one the console's API and the CLI's
// --json print (docs/api.md#json-conventions): times are RFC 3339 UTC with six
// fractional digits and left out when unset, durations are nanoseconds, strings
// without a value are left out, lists and objects are always present ([] or {}), and
// numbers and booleans always present.

// Every type encodes by jsonfmt.Marshal (its fields in order, under their tags'
// names, by the conventions above) but ScheduledEvent, which embeds the schedule
// entry.

// MarshalJSON encodes p by the package's JSON conventions.
func (p Process) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(p) }

// MarshalJSON encodes s by the package's JSON conventions.
func (s ConsumerStatus) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(s) }

// MarshalJSON encodes v by the package's JSON conventions.
func (v ConsumerView) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(v) }

// MarshalJSON encodes c by the package's JSON conventions.
func (c Command) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(c) }

// MarshalJSON encodes g by the package's JSON conventions.
func (g ErrorGroup) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(g) }

// MarshalJSON encodes p by the package's JSON conventions.
func (p RetentionPolicy) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(p) }

// MarshalJSON encodes r by the package's JSON conventions.
func (r RetentionReport) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(r) }

// MarshalJSON encodes r by the package's JSON conventions.
func (r Retention) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(r) }

// MarshalJSON encodes r by the package's JSON conventions.
func (r BulkResult) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(r) }

// MarshalJSON encodes s as the schedule entry's members (modelevent.Scheduled) and
// "event", the row.
func (s ScheduledEvent) MarshalJSON() ([]byte, error) {
	return jsonfmt.Merge(s.Scheduled, struct {
		Event modelevent.ModelEvent `json:"event"`
	}{s.Event})
}
