// Package msgid makes the message UUID of a message that a foreign producer sent
// without a Watermill UUID, the same on every redelivery of it, so that the store
// records it once. The kafka, nats and amqp backends share it: an id they derive
// stays the same from one release to the next, since rows already stored carry it.
package msgid

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/go-eventbus/eventbus/modelevent"
)

// Derive returns the message UUID for readable, a readable id of a message such as
// "kafka:orders/3/42": readable itself when it is at most
// modelevent.MaxMessageUUIDLen bytes long (bytes, not characters, so that it fits
// the column whatever its encoding), else UUID(readable). The same readable id
// always gives the same result.
func Derive(readable string) string {
	if len(readable) > modelevent.MaxMessageUUIDLen {
		return UUID(readable)
	}
	return readable
}

// UUID returns the name-based version 8 UUID of name (RFC 9562, appendix B.2): the
// first 128 bits of its SHA-256 with the version and variant bits set, in the
// 36-character text form. The same name always gives the same UUID.
func UUID(name string) string {
	sum := sha256.Sum256([]byte(name))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8
	b[8] = b[8]&0x3f | 0x80 // variant 10
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
