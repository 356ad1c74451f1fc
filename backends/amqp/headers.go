package amqp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// headerText returns the metadata value of an AMQP header value v. It never fails:
//
//   - strings are themselves;
//   - integers (int8 … int64, byte) and decimals are decimal text ("3", "-12",
//     "123.45"); floats are the shortest decimal text that reads back as the same
//     float ("0.5"; "NaN", "+Inf", "-Inf");
//   - booleans are "true" or "false"; timestamps RFC 3339 in UTC;
//   - byte arrays are their text when it is valid UTF-8, else standard base64;
//   - nested tables and arrays are JSON (numbers as JSON numbers, timestamps, byte
//     arrays and non-finite floats as JSON strings as above);
//   - a void value (nil) is ""; any other Go value is formatted with fmt.Sprint.
func headerText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	case amqp091.Table, []any:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(jsonValue(v)); err != nil {
			return fmt.Sprint(v) // unreachable: jsonValue builds only encodable values
		}
		return strings.TrimSuffix(b.String(), "\n")
	}
	if s, ok := scalarText(v); ok {
		return s
	}
	return fmt.Sprint(v)
}

// scalarText formats the numbers, booleans, timestamps and byte arrays of headerText.
func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case bool:
		return strconv.FormatBool(v), true
	case int8:
		return strconv.FormatInt(int64(v), 10), true
	case int16:
		return strconv.FormatInt(int64(v), 10), true
	case int32:
		return strconv.FormatInt(int64(v), 10), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case int:
		return strconv.FormatInt(int64(v), 10), true
	case uint8:
		return strconv.FormatUint(uint64(v), 10), true
	case uint16:
		return strconv.FormatUint(uint64(v), 10), true
	case uint32:
		return strconv.FormatUint(uint64(v), 10), true
	case uint64:
		return strconv.FormatUint(v, 10), true
	case uint:
		return strconv.FormatUint(uint64(v), 10), true
	case float32:
		return strconv.FormatFloat(float64(v), 'f', -1, 32), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case amqp091.Decimal:
		return decimalText(v), true
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano), true
	case []byte:
		if utf8.Valid(v) {
			return string(v), true
		}
		return base64.StdEncoding.EncodeToString(v), true
	}
	return "", false
}

// decimalText writes d (Value × 10^-Scale) as decimal text, e.g. {2, -12345} → "-123.45".
func decimalText(d amqp091.Decimal) string {
	v := int64(d.Value)
	neg := v < 0
	if neg {
		v = -v
	}
	digits := strconv.FormatInt(v, 10)
	if s := int(d.Scale); s > 0 {
		if len(digits) <= s {
			digits = strings.Repeat("0", s-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-s] + "." + digits[len(digits)-s:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// jsonValue turns a header value into one encoding/json encodes without error.
func jsonValue(v any) any {
	switch v := v.(type) {
	case nil, string, bool:
		return v
	case amqp091.Table:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = jsonValue(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = jsonValue(x)
		}
		return out
	case float32:
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return headerText(v)
		}
		return json.Number(headerText(v))
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return headerText(v)
		}
		return json.Number(headerText(v))
	case int8, int16, int32, int64, int, uint8, uint16, uint32, uint64, uint, amqp091.Decimal:
		return json.Number(headerText(v))
	}
	return headerText(v)
}

// textHeaders returns a copy of h with every value but that of keep as headerText, or
// h itself when all those values are strings already.
func textHeaders(h amqp091.Table, keep string) amqp091.Table {
	var out amqp091.Table
	for k, v := range h {
		if _, ok := v.(string); ok || k == keep {
			continue
		}
		if out == nil {
			out = make(amqp091.Table, len(h))
			for k, v := range h {
				out[k] = v
			}
		}
		out[k] = headerText(v)
	}
	if out == nil {
		return h
	}
	return out
}
