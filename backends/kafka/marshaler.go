package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/modelevent"
)

// keyMarshaler is Watermill's DefaultMarshaler (UUID and metadata in record headers)
// plus the message key: the value of the metadata key Config.PartitionKey. A message
// without it has no key and goes to any partition; one with it keeps its order relative
// to every message with the same key.
type keyMarshaler struct {
	kafka.DefaultMarshaler
	key string
}

// Marshal turns msg into a Kafka record for topic.
func (m keyMarshaler) Marshal(topic string, msg *message.Message) (*sarama.ProducerMessage, error) {
	pm, err := m.DefaultMarshaler.Marshal(topic, msg)
	if err != nil {
		return nil, err
	}
	if k := msg.Metadata.Get(m.key); k != "" {
		pm.Key = sarama.StringEncoder(k)
	}
	return pm, nil
}

// Unmarshal turns a Kafka record into a message with Watermill's DefaultMarshaler and
// makes every record recordable, whoever produced it:
//
//   - a record without a Watermill UUID header (a plain Kafka producer's) gets
//     positionID, the same on every redelivery;
//   - the record key, when there is one and no header of the same name, is set in the
//     metadata under the partition key, so it survives a republish (poison, replay);
//   - a record whose UUID header cannot be a message UUID (longer than the store keeps),
//     or that Watermill cannot unmarshal, is handed over with positionID and
//     modelevent.MetadataDecodeError set to the reason, so the bus poisons it instead
//     of it being redelivered forever.
//
// It never returns an error.
func (m keyMarshaler) Unmarshal(km *sarama.ConsumerMessage) (*message.Message, error) {
	msg, err := m.DefaultMarshaler.Unmarshal(km)
	var reason string
	if err != nil {
		reason = fmt.Sprintf("unmarshal: %v", err)
		msg = message.NewMessage("", km.Value)
	}
	if reason == "" {
		reason = badUUID(msg.UUID)
	}
	if msg.UUID == "" || reason != "" {
		msg.UUID = positionID(km)
	}
	if len(km.Key) > 0 && m.key != "" {
		if _, set := msg.Metadata[m.key]; !set {
			msg.Metadata.Set(m.key, string(km.Key))
		}
	}
	if reason != "" {
		msg.Metadata.Set(modelevent.MetadataDecodeError, reason)
	}
	return msg, nil
}

// schemaUnmarshaler decodes the values of schema-registry topics back into JSON. A
// value that can never be decoded (not wire format, unknown schema id, a body that does
// not match its schema) is handed over as it is, with modelevent.MetadataDecodeError
// set to the reason: the bus poisons it instead of running the consumers. When the
// registry cannot be reached it returns an error, so the subscription starts over
// from the last committed offset and the message comes again later.
type schemaUnmarshaler struct {
	keyMarshaler
	serde  *serde
	logger watermill.LoggerAdapter
}

// Unmarshal turns a Kafka record into a message with a JSON payload.
func (u schemaUnmarshaler) Unmarshal(km *sarama.ConsumerMessage) (*message.Message, error) {
	msg, err := u.keyMarshaler.Unmarshal(km)
	if err != nil || u.serde == nil || !u.serde.handles(km.Topic) || msg.Metadata.Get(modelevent.MetadataDecodeError) != "" {
		return msg, err
	}
	delete(msg.Metadata, MetadataSchemaID) // the wire's id is the truth
	var (
		out []byte
		id  int
	)
	for attempt, wait := 1, 200*time.Millisecond; ; attempt, wait = attempt+1, wait*2 {
		out, id, err = u.serde.decode(context.Background(), km.Topic, km.Value)
		if err == nil || errors.Is(err, errPermanent) {
			break
		}
		if attempt == registryAttempts {
			return nil, fmt.Errorf("kafka: decode %q partition %d offset %d: %w (will retry)", km.Topic, km.Partition, km.Offset, err)
		}
		time.Sleep(wait)
	}
	if id != 0 {
		msg.Metadata.Set(MetadataSchemaID, strconv.Itoa(id))
	}
	if err != nil {
		reason := strings.TrimSuffix(err.Error(), ": "+errPermanent.Error())
		u.logger.Info("Kafka message could not be decoded; it will be poisoned", watermill.LogFields{
			"topic": km.Topic, "partition": km.Partition, "offset": km.Offset, "message_uuid": msg.UUID, "reason": reason,
		})
		msg.Metadata.Set(modelevent.MetadataDecodeError, reason)
		return msg, nil
	}
	msg.Payload = out
	return msg, nil
}

// registryAttempts is how often a decode asks the registry before it gives the
// message back to the subscription.
const registryAttempts = 3
