package kafka

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
)

// maxUUIDLen is the longest message UUID the store keeps (its message_uuid column).
const maxUUIDLen = 64

// positionID is the message UUID of a record that carries no Watermill UUID: its place
// in the log, "kafka:<topic>/<partition>/<offset>", which every redelivery of the
// record shares. When that is longer than maxUUIDLen (topics may have 249 characters)
// it is nameUUID of that string instead.
func positionID(km *sarama.ConsumerMessage) string {
	id := "kafka:" + km.Topic + "/" + strconv.FormatInt(int64(km.Partition), 10) + "/" + strconv.FormatInt(km.Offset, 10)
	if len(id) > maxUUIDLen {
		return nameUUID(id)
	}
	return id
}

// nameUUID returns the name-based version 8 UUID of name (RFC 9562, appendix B.2):
// the first 128 bits of its SHA-256 with the version and variant bits set. The same
// name always gives the same UUID.
func nameUUID(name string) string {
	sum := sha256.Sum256([]byte(name))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8
	b[8] = b[8]&0x3f | 0x80 // variant 10
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// badUUID says why a Watermill UUID header cannot be a message UUID, or returns "".
func badUUID(uuid string) string {
	if len(uuid) > maxUUIDLen {
		return fmt.Sprintf("header %s is %d bytes long, at most %d are kept", kafka.UUIDHeaderKey, len(uuid), maxUUIDLen)
	}
	return ""
}
