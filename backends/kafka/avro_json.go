package kafka

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
)

// This file converts between the JSON payloads the bus carries and the generic Go
// values hamba/avro encodes, walking the schema so that a mismatch names the field.

// jsonToAvro parses a JSON payload and converts it into a value for schema s.
func jsonToAvro(s avro.Schema, payload []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("payload is not JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("payload is not one JSON value: data after the first value")
	}
	return toAvro(s, v, "")
}

// avroToJSON renders a value decoded with schema s as JSON, record fields in schema
// order.
func avroToJSON(s avro.Schema, v any) ([]byte, error) {
	j, err := fromAvro(s, v, "")
	if err != nil {
		return nil, err
	}
	return json.Marshal(j)
}

// fieldErr prefixes err's text with the field path, if any.
func fieldErr(path, format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	if path == "" {
		return fmt.Errorf("%s", msg)
	}
	return fmt.Errorf("field %q: %s", path, msg)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// jsonKind names the JSON type of a decoded value, for errors.
func jsonKind(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number " + v.String()
	case string:
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return fmt.Sprintf("string %q", v)
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// typeName names schema s as errors and unions do: its full name for named types,
// its type otherwise (with a logical type: "long.timestamp-millis").
func typeName(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	if l, ok := s.(avro.LogicalTypeSchema); ok && l.Logical() != nil {
		return string(s.Type()) + "." + string(l.Logical().Type())
	}
	return string(s.Type())
}

// unionName is the key hamba expects for a union branch in map form: its typeName.
func unionName(s avro.Schema) string { return typeName(s) }

func logical(s avro.Schema) avro.LogicalType {
	if l, ok := s.(avro.LogicalTypeSchema); ok && l.Logical() != nil {
		return l.Logical().Type()
	}
	return ""
}

func deref(s avro.Schema) avro.Schema {
	for {
		r, ok := s.(*avro.RefSchema)
		if !ok {
			return s
		}
		s = r.Schema()
	}
}

func toAvro(s avro.Schema, v any, path string) (any, error) {
	s = deref(s)
	want := func() error { return fieldErr(path, "want %s, got %s", typeName(s), jsonKind(v)) }
	switch s.Type() {
	case avro.Null:
		if v != nil {
			return nil, want()
		}
		return nil, nil
	case avro.Boolean:
		b, ok := v.(bool)
		if !ok {
			return nil, want()
		}
		return b, nil
	case avro.Int:
		if str, ok := v.(string); ok && logical(s) == avro.Date {
			t, err := time.Parse(time.DateOnly, str)
			if err != nil {
				return nil, fieldErr(path, "want a date (2006-01-02) or days since 1970-01-01, got %s", jsonKind(v))
			}
			return t, nil
		}
		n, ok := v.(json.Number)
		if !ok {
			return nil, want()
		}
		i, err := n.Int64()
		if err != nil || i < math.MinInt32 || i > math.MaxInt32 {
			return nil, fieldErr(path, "want %s (32-bit integer), got %s", typeName(s), jsonKind(v))
		}
		if logical(s) == avro.Date {
			return time.Unix(i*86400, 0).UTC(), nil
		}
		if logical(s) == avro.TimeMillis {
			return time.Duration(i) * time.Millisecond, nil
		}
		return int(i), nil
	case avro.Long:
		lt := logical(s)
		if str, ok := v.(string); ok && isTimestamp(lt) {
			t, err := time.Parse(time.RFC3339Nano, str)
			if err != nil {
				return nil, fieldErr(path, "want an RFC 3339 time or an epoch number for %s, got %s", typeName(s), jsonKind(v))
			}
			return t, nil
		}
		n, ok := v.(json.Number)
		if !ok {
			return nil, want()
		}
		i, err := n.Int64()
		if err != nil {
			return nil, fieldErr(path, "want %s (64-bit integer), got %s", typeName(s), jsonKind(v))
		}
		switch lt {
		case avro.TimestampMillis, avro.LocalTimestampMillis:
			return time.UnixMilli(i).UTC(), nil
		case avro.TimestampMicros, avro.LocalTimestampMicros:
			return time.UnixMicro(i).UTC(), nil
		case avro.TimeMicros:
			return time.Duration(i) * time.Microsecond, nil
		}
		return i, nil
	case avro.Float, avro.Double:
		n, ok := v.(json.Number)
		if !ok {
			return nil, want()
		}
		f, err := n.Float64()
		if err != nil {
			return nil, want()
		}
		if s.Type() == avro.Float {
			return float32(f), nil
		}
		return f, nil
	case avro.String:
		str, ok := v.(string)
		if !ok {
			return nil, want()
		}
		return str, nil
	case avro.Bytes:
		if logical(s) == avro.Decimal {
			return toDecimal(s, v, path)
		}
		str, ok := v.(string)
		if !ok {
			return nil, want()
		}
		return latin1Bytes(str, path)
	case avro.Fixed:
		fs := s.(*avro.FixedSchema)
		if logical(s) == avro.Decimal {
			return toDecimal(s, v, path)
		}
		str, ok := v.(string)
		if !ok {
			return nil, want()
		}
		b, err := latin1Bytes(str, path)
		if err != nil {
			return nil, err
		}
		if len(b) != fs.Size() {
			return nil, fieldErr(path, "want %d bytes for fixed %s, got %d", fs.Size(), fs.FullName(), len(b))
		}
		arr := reflect.New(reflect.ArrayOf(fs.Size(), reflect.TypeOf(byte(0)))).Elem()
		reflect.Copy(arr, reflect.ValueOf(b))
		return arr.Interface(), nil
	case avro.Enum:
		es := s.(*avro.EnumSchema)
		str, ok := v.(string)
		if !ok {
			return nil, want()
		}
		for _, sym := range es.Symbols() {
			if sym == str {
				return str, nil
			}
		}
		return nil, fieldErr(path, "%q is not a symbol of enum %s (symbols: %s)", str, es.FullName(), strings.Join(es.Symbols(), ", "))
	case avro.Array:
		arr, ok := v.([]any)
		if !ok {
			return nil, want()
		}
		items := s.(*avro.ArraySchema).Items()
		out := make([]any, len(arr))
		for i, e := range arr {
			c, err := toAvro(items, e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case avro.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, want()
		}
		values := s.(*avro.MapSchema).Values()
		out := make(map[string]any, len(obj))
		for k, e := range obj {
			c, err := toAvro(values, e, join(path, k))
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case avro.Record:
		rs := s.(*avro.RecordSchema)
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, want()
		}
		out := make(map[string]any, len(rs.Fields()))
		known := make(map[string]bool, len(rs.Fields()))
		for _, f := range rs.Fields() {
			known[f.Name()] = true
			e, present := obj[f.Name()]
			if !present {
				if !f.HasDefault() {
					return nil, fieldErr(join(path, f.Name()), "missing, and schema %s gives it no default", rs.FullName())
				}
				continue // hamba writes the default
			}
			c, err := toAvro(f.Type(), e, join(path, f.Name()))
			if err != nil {
				return nil, err
			}
			out[f.Name()] = c
		}
		for k := range obj {
			if !known[k] {
				return nil, fieldErr(join(path, k), "not in schema %s", rs.FullName())
			}
		}
		return out, nil
	case avro.Union:
		us := s.(*avro.UnionSchema)
		if v == nil {
			if us.Contains(avro.Null) {
				return nil, nil
			}
			return nil, want()
		}
		var firstErr error
		for _, branch := range us.Types() {
			if deref(branch).Type() == avro.Null {
				continue
			}
			c, err := toAvro(branch, v, path)
			if err == nil {
				return map[string]any{unionName(deref(branch)): c}, nil
			}
			if firstErr == nil {
				firstErr = err
			}
		}
		names := make([]string, len(us.Types()))
		for i, b := range us.Types() {
			names[i] = typeName(deref(b))
		}
		if len(names) == 2 && firstErr != nil && us.Nullable() {
			return nil, firstErr // ["null", T]: T's error is the precise one
		}
		return nil, fieldErr(path, "want one of [%s], got %s", strings.Join(names, ", "), jsonKind(v))
	}
	return nil, fieldErr(path, "unsupported Avro type %s", s.Type())
}

func isTimestamp(lt avro.LogicalType) bool {
	switch lt {
	case avro.TimestampMillis, avro.TimestampMicros, avro.LocalTimestampMillis, avro.LocalTimestampMicros:
		return true
	}
	return false
}

// latin1Bytes maps a JSON string to bytes as Avro's JSON encoding does: each code
// point 0–255 is one byte.
func latin1Bytes(s, path string) ([]byte, error) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, fieldErr(path, "want bytes as a string of code points U+0000–U+00FF (Avro's JSON encoding), got %q", r)
		}
		b = append(b, byte(r))
	}
	return b, nil
}

func latin1String(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

func toDecimal(s avro.Schema, v any, path string) (any, error) {
	var text string
	switch v := v.(type) {
	case json.Number:
		text = v.String()
	case string:
		text = v
	default:
		return nil, fieldErr(path, "want a decimal number, got %s", jsonKind(v))
	}
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		return nil, fieldErr(path, "want a decimal number, got %s", jsonKind(v))
	}
	return r, nil
}

// object is a JSON object that keeps its keys in order.
type object struct {
	keys []string
	vals []any
}

// MarshalJSON writes the object with its keys in order.
func (o object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		vb, err := json.Marshal(o.vals[i])
		if err != nil {
			return nil, err
		}
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func fromAvro(s avro.Schema, v any, path string) (any, error) {
	s = deref(s)
	switch s.Type() {
	case avro.Null:
		return nil, nil
	case avro.Float, avro.Double:
		var f float64
		switch n := v.(type) {
		case float32:
			f = float64(n)
		case float64:
			f = n
		default:
			return v, nil
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Sprint(f), nil // JSON has no NaN or infinity
		}
		if s.Type() == avro.Float {
			return json.Number(fmt.Sprint(float32(f))), nil
		}
		return f, nil
	case avro.Int, avro.Long:
		switch t := v.(type) {
		case time.Time:
			if logical(s) == avro.Date {
				return t.UTC().Format(time.DateOnly), nil
			}
			return t.UTC().Format(time.RFC3339Nano), nil
		case time.Duration:
			if logical(s) == avro.TimeMillis {
				return t.Milliseconds(), nil
			}
			return t.Microseconds(), nil
		}
		return v, nil
	case avro.Bytes, avro.Fixed:
		if r, ok := v.(*big.Rat); ok {
			scale := 0
			if d, ok := s.(avro.LogicalTypeSchema).Logical().(*avro.DecimalLogicalSchema); ok {
				scale = d.Scale()
			}
			return json.Number(r.FloatString(scale)), nil
		}
		if b, ok := v.([]byte); ok {
			return latin1String(b), nil
		}
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Array {
			b := make([]byte, rv.Len())
			reflect.Copy(reflect.ValueOf(b), rv)
			return latin1String(b), nil
		}
		return v, nil
	case avro.Array:
		arr, ok := v.([]any)
		if !ok {
			return v, nil
		}
		out := make([]any, len(arr))
		for i, e := range arr {
			c, err := fromAvro(s.(*avro.ArraySchema).Items(), e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case avro.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return v, nil
		}
		out := make(map[string]any, len(m))
		for k, e := range m {
			c, err := fromAvro(s.(*avro.MapSchema).Values(), e, join(path, k))
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case avro.Record:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fieldErr(path, "decoded %T for record %s", v, s.(*avro.RecordSchema).FullName())
		}
		var o object
		for _, f := range s.(*avro.RecordSchema).Fields() {
			e, present := m[f.Name()]
			if !present {
				continue // a writer-only field the reader drops
			}
			c, err := fromAvro(f.Type(), e, join(path, f.Name()))
			if err != nil {
				return nil, err
			}
			o.keys = append(o.keys, f.Name())
			o.vals = append(o.vals, c)
		}
		return o, nil
	case avro.Union:
		if v == nil {
			return nil, nil
		}
		us := s.(*avro.UnionSchema)
		if m, ok := v.(map[string]any); ok && len(m) == 1 {
			for name, e := range m {
				if b, _ := us.Types().Get(name); b != nil {
					return fromAvro(b, e, path)
				}
			}
		}
		for _, b := range us.Types() {
			if deref(b).Type() != avro.Null && goMatches(deref(b), v) {
				return fromAvro(b, v, path)
			}
		}
		return v, nil
	}
	return v, nil
}

// goMatches reports whether a decoded Go value can be of schema s.
func goMatches(s avro.Schema, v any) bool {
	switch v.(type) {
	case bool:
		return s.Type() == avro.Boolean
	case int, int32, int64, time.Time, time.Duration:
		return s.Type() == avro.Int || s.Type() == avro.Long
	case float32, float64:
		return s.Type() == avro.Float || s.Type() == avro.Double
	case string:
		return s.Type() == avro.String || s.Type() == avro.Enum
	case []byte, *big.Rat:
		return s.Type() == avro.Bytes || s.Type() == avro.Fixed
	case []any:
		return s.Type() == avro.Array
	case map[string]any:
		return s.Type() == avro.Map || s.Type() == avro.Record
	}
	return true
}
