package amqp

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// maxUUIDLen is the longest message UUID the store keeps (its message_uuid column).
const maxUUIDLen = 64

// deliveryID is the message UUID of a delivery without a usable Watermill UUID, the
// same on every redelivery of it: its message-id property when set (nameUUID of it
// when longer than maxUUIDLen), else nameUUID of its exchange, routing key, timestamp
// property, headers (as text, see headerText) and body. Two messages published without
// message-id and with all of those equal get the same UUID: they are one row.
func deliveryID(d amqp091.Delivery) string {
	if d.MessageId != "" {
		if len(d.MessageId) > maxUUIDLen {
			return nameUUID(d.MessageId)
		}
		return d.MessageId
	}
	headers := make(map[string]string, len(d.Headers))
	for k, v := range d.Headers {
		headers[k] = headerText(v)
	}
	h, _ := json.Marshal(headers) // sorted keys; a map of strings always encodes
	name := fmt.Sprintf("amqp %q %q %d %s\n", d.Exchange, d.RoutingKey, d.Timestamp.UnixNano(), h)
	return nameUUID(name + string(d.Body))
}

// nameUUID returns the name-based version 8 UUID of name (RFC 9562, appendix B.2):
// the first 128 bits of its SHA-256 with the version and variant bits set. The same
// name always gives the same UUID.
func nameUUID(name string) string {
	sum := sha256.Sum256([]byte(name))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8
	b[8] = b[8]&0x3f | 0x80 // variant 10
	s := hex.EncodeToString(b)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// badUUID says why the Watermill UUID uuid (header key) cannot be a message UUID, or
// returns "".
func badUUID(key, uuid string) string {
	if len(uuid) > maxUUIDLen {
		return fmt.Sprintf("header %s is %d bytes long, at most %d are kept", key, len(uuid), maxUUIDLen)
	}
	return ""
}
