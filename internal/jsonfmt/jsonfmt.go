// Package jsonfmt holds the JSON conventions that every JSON document of eventbus
// follows (the console's API, the CLI's --json, and the MarshalJSON methods of the
// modelevent and control types; docs/api.md#json-conventions):
//
//   - a time is RFC 3339 in UTC with exactly six fractional digits (microseconds,
//     what every store keeps), e.g. "2026-12-01T12:00:00.250000Z"; a time that is not
//     set is left out, never "0001-01-01T00:00:00Z" and never null;
//   - a duration is an integer of nanoseconds (Go's time.Duration);
//   - a string without a value is left out; a list or an object is always present,
//     [] or {} when empty, never null; numbers and booleans are always present.
//
// The types below carry those rules into the struct shadows that the MarshalJSON
// methods encode (a field of the shadow hides the field of the same JSON name of the
// embedded original).
package jsonfmt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// TimeLayout is the layout of every time in eventbus's JSON (always in UTC).
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// Time is a time.Time that encodes as TimeLayout in UTC. Its IsZero makes a field
// tagged omitzero leave an unset time out. It decodes any RFC 3339 time (and null,
// as the zero time). It is a TextMarshaler, not a json.Marshaler, so that
// encoding/json writes it without re-scanning its output.
type Time time.Time

// IsZero reports whether the time is not set.
func (t Time) IsZero() bool { return time.Time(t).IsZero() }

// Format returns t as TimeLayout in UTC, rounded down to the microsecond.
func Format(t time.Time) string { return t.UTC().Truncate(time.Microsecond).Format(TimeLayout) }

// MarshalText writes t in TimeLayout, in UTC, rounded down to the microsecond
// (encoding/json quotes it). A field of type Time is tagged omitzero: the zero time is
// left out, never written.
func (t Time) MarshalText() ([]byte, error) {
	return time.Time(t).UTC().Truncate(time.Microsecond).AppendFormat(make([]byte, 0, len(TimeLayout)), TimeLayout), nil
}

// UnmarshalText reads an RFC 3339 time (any precision, any offset); encoding/json
// leaves a Time unchanged (zero) for a JSON null.
func (t *Time) UnmarshalText(b []byte) error {
	tt, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return fmt.Errorf("jsonfmt: time: %w", err)
	}
	*t = Time(tt)
	return nil
}

// List returns s, or an empty list when s is nil, so that it encodes as [] (never
// null).
func List[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Map returns m, or an empty map when m is nil, so that it encodes as {} (never null).
func Map[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return m
}

// Merge encodes each of objs (each must encode as a JSON object) and returns one
// object with the members of all, in order: a type that embeds another whose
// MarshalJSON would otherwise hide the embedding type's own fields encodes as
// Merge(embedded, ownFields).
func Merge(objs ...any) ([]byte, error) {
	out := []byte{'{'}
	for _, o := range objs {
		b, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
			return nil, fmt.Errorf("jsonfmt: merge: %T does not encode as an object", o)
		}
		if inner := bytes.TrimSpace(b[1 : len(b)-1]); len(inner) > 0 {
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(out, inner...)
		}
	}
	return append(out, '}'), nil
}
