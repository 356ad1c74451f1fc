package kafka

import (
	"fmt"
	"strconv"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"

	"github.com/go-eventbus/eventbus/internal/msgid"
	"github.com/go-eventbus/eventbus/modelevent"
)

// positionID is the message UUID of a record that carries no Watermill UUID: its place
// in the log, "kafka:<topic>/<partition>/<offset>", which every redelivery of the
// record shares, through msgid.Derive (a name-based UUID of it when it is longer than
// the store keeps; topics may have 249 characters).
func positionID(km *sarama.ConsumerMessage) string {
	return msgid.Derive("kafka:" + km.Topic + "/" + strconv.FormatInt(int64(km.Partition), 10) + "/" + strconv.FormatInt(km.Offset, 10))
}

// badUUID says why a Watermill UUID header cannot be a message UUID, or returns "".
func badUUID(uuid string) string {
	if len(uuid) > modelevent.MaxMessageUUIDLen {
		return fmt.Sprintf("header %s is %d bytes long, at most %d are kept", kafka.UUIDHeaderKey, len(uuid), modelevent.MaxMessageUUIDLen)
	}
	return ""
}
