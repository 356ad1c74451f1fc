package kafka

import (
	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
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
