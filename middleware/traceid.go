package middleware

import "github.com/ThreeDotsLabs/watermill/message"

// TraceparentKey is the metadata key of the W3C trace context a message carries
// (https://www.w3.org/TR/trace-context/#traceparent-header), as OpenTelemetry's
// propagator writes it.
const TraceparentKey = "traceparent"

// TraceIDOf returns the trace id (32 lower-case hex digits) of the W3C traceparent in
// md, or "" when md carries none or a malformed one. It allocates nothing.
func TraceIDOf(md message.Metadata) string {
	tp := md[TraceparentKey]
	// version "-" trace-id "-" parent-id "-" flags: 2+1+32+1+16+1+2 characters.
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' {
		return ""
	}
	id := tp[3:35]
	zero := true
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		default:
			return ""
		}
		zero = zero && c == '0'
	}
	if zero {
		return ""
	}
	return id
}
