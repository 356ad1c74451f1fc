package modelevent

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// textColumn is a VARCHAR column of eventbus_events: its length in characters, the
// metadata key its value comes from (empty when it does not come from metadata), and
// its field.
type textColumn struct {
	name    string
	max     int
	metaKey string
	field   func(*ModelEvent) *string
}

// textColumns are the length-limited columns, checked in Write so every dialect agrees.
var textColumns = []textColumn{
	{"message_uuid", MaxMessageUUIDLen, "", func(e *ModelEvent) *string { return &e.MessageUUID }},
	{"handler", 191, "", func(e *ModelEvent) *string { return &e.Handler }},
	{"topic", 255, "", func(e *ModelEvent) *string { return &e.Topic }},
	{"model", 255, MetadataModel, func(e *ModelEvent) *string { return &e.Model }},
	{"object_id", 191, MetadataObjectID, func(e *ModelEvent) *string { return &e.ObjectID }},
	{"change_type", 16, MetadataChange, func(e *ModelEvent) *string { return (*string)(&e.Change) }},
	{"backend", 32, "", func(e *ModelEvent) *string { return &e.Backend }},
	{"correlation_id", 255, MetadataCorrelationID, func(e *ModelEvent) *string { return &e.CorrelationID }},
	{"trace_id", 32, "", func(e *ModelEvent) *string { return &e.TraceID }},
}

// truncMarker ends a value that was cut to fit its column.
const truncMarker = "…"

// repair makes r storable in every dialect: text columns valid UTF-8 without NUL and
// no longer than their column (the full value kept in metadata), and the metadata
// encoded. The repair is a function of the values, so every write of one message maps
// to the same row, even one whose message UUID had to be cut.
func repair(r *row) {
	var truncated []string
	for _, c := range textColumns {
		p := c.field(&r.ModelEvent)
		v := cleanText(*p)
		if len(v) > c.max && utf8.RuneCountInString(v) > c.max {
			if c.metaKey == "" || r.Metadata[c.metaKey] != *p {
				r.Metadata = withKey(r.Metadata, "eventbus_full_"+c.name, v)
			}
			v = cut(v, c.max, c.name == "message_uuid")
			truncated = append(truncated, c.name)
		}
		*p = v
	}
	r.LastError = cleanText(r.LastError)
	if len(truncated) > 0 {
		r.Metadata = withKey(r.Metadata, MetadataTruncated, strings.Join(truncated, ","))
	}
	r.key = eventKey{r.MessageUUID, r.Direction, r.Handler}
	r.meta, r.metaCols = encodeMetadata(&r.ModelEvent)
	if r.CorrelationID != "" && r.CorrelationID == r.MessageUUID {
		r.metaCols |= corrIsUUID
	}
}

// withKey returns m with k set to v, copying m first: the map belongs to the caller.
func withKey(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for mk, mv := range m {
		out[mk] = mv
	}
	out[k] = v
	return out
}

// cut shortens s to max characters, the last being the marker. A cut key (the message
// UUID) ends in a hash of the whole value instead, so two long keys that share a
// prefix stay two rows.
func cut(s string, max int, key bool) string {
	if key {
		sum := fnv64(s)
		suffix := fmt.Sprintf("%s%016x", truncMarker, sum)
		return prefixRunes(s, max-utf8.RuneCountInString(suffix)) + suffix
	}
	return prefixRunes(s, max-1) + truncMarker
}

func prefixRunes(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

// fnv64 is the 64-bit FNV-1a hash of s.
func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// cleanText makes s storable in a text column of every dialect: valid UTF-8 without NUL.
func cleanText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// columnKeys are the metadata keys whose value a column also holds: the stored
// metadata leaves them out when they equal the column (their bits in meta_columns say
// which), and reading puts them back.
var columnKeys = []struct {
	key   string
	bit   int
	field func(*ModelEvent) string
}{
	{MetadataCorrelationID, 1, func(e *ModelEvent) string { return e.CorrelationID }},
	{MetadataModel, 2, func(e *ModelEvent) string { return e.Model }},
	{MetadataObjectID, 4, func(e *ModelEvent) string { return e.ObjectID }},
	{MetadataChange, 8, func(e *ModelEvent) string { return string(e.Change) }},
}

// encodeMetadata returns e's metadata as a JSON object with sorted keys, leaving out the
// keys whose value a column holds, and the meta_columns bits of those it left out. No
// key left is stored as "" (reading takes "" and "{}" alike).
// Invalid UTF-8 becomes U+FFFD, as encoding/json does.
func encodeMetadata(e *ModelEvent) (string, int) {
	if len(e.Metadata) == 0 {
		return "", 0
	}
	var buf [16]string
	keys := buf[:0]
	cols := 0
	for k, v := range e.Metadata {
		if bit := columnBit(e, k, v); bit != 0 {
			cols |= bit
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return "", cols
	}
	slices.Sort(keys)
	b := make([]byte, 0, 64*len(keys))
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, e.Metadata[k])
	}
	b = append(b, '}')
	return string(b), cols
}

// columnBit returns the meta_columns bit of metadata key k when a column of e holds
// its value v, else 0.
func columnBit(e *ModelEvent, k, v string) int {
	if v == "" {
		return 0
	}
	for _, c := range columnKeys {
		if c.key == k {
			if c.field(e) == v {
				return c.bit
			}
			return 0
		}
	}
	return 0
}

// corrIsUUID is the meta_columns bit of a row whose correlation id is its message UUID
// (what the bus gives a message that starts a flow): the correlation_id column stays
// empty, which keeps the value out of the row and out of the correlation index.
const corrIsUUID = 16

// correlationColumn returns the value stored in r's correlation_id column.
func (r *row) correlationColumn() string {
	if r.metaCols&corrIsUUID != 0 {
		return ""
	}
	return r.CorrelationID
}

// restoreMetadata decodes stored metadata into e and puts back the keys that the
// meta_columns bits cols say a column holds.
func restoreMetadata(e *ModelEvent, meta string, cols int) error {
	if meta != "" && meta != "{}" {
		if err := json.Unmarshal([]byte(meta), &e.Metadata); err != nil {
			return fmt.Errorf("event %s: decode metadata: %w", e.ID, err)
		}
	}
	if cols == 0 {
		return nil
	}
	if cols&corrIsUUID != 0 {
		e.CorrelationID = e.MessageUUID
	}
	if cols&^corrIsUUID == 0 {
		return nil
	}
	if e.Metadata == nil {
		e.Metadata = make(map[string]string, 4)
	}
	for _, c := range columnKeys {
		if cols&c.bit != 0 {
			e.Metadata[c.key] = c.field(e)
		}
	}
	return nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s to b as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
