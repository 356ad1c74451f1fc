package kafka

import (
	"regexp"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"

	"github.com/go-eventbus/eventbus/internal/msgid"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestUnmarshalForeignRecord: a record of a plain producer (no Watermill UUID header)
// gets its position as UUID and its key in the metadata; headers become metadata.
func TestUnmarshalForeignRecord(t *testing.T) {
	m := keyMarshaler{key: modelevent.MetadataKey}
	km := &sarama.ConsumerMessage{
		Topic: "orders", Partition: 3, Offset: 1234, Key: []byte("order-7"), Value: []byte("v"),
		Headers: []*sarama.RecordHeader{{Key: []byte("source"), Value: []byte("legacy")}},
	}
	msg, err := m.Unmarshal(km)
	if err != nil {
		t.Fatal(err)
	}
	if msg.UUID != "kafka:orders/3/1234" {
		t.Errorf("UUID %q, want kafka:orders/3/1234", msg.UUID)
	}
	if got := msg.Metadata.Get(modelevent.MetadataKey); got != "order-7" {
		t.Errorf("key %q, want order-7", got)
	}
	if got := msg.Metadata.Get("source"); got != "legacy" {
		t.Errorf("header source %q, want legacy", got)
	}
	if got := msg.Metadata.Get(modelevent.MetadataDecodeError); got != "" {
		t.Errorf("decode error %q on a good record", got)
	}
	again, _ := m.Unmarshal(km)
	if again.UUID != msg.UUID {
		t.Errorf("redelivery got UUID %q, first delivery %q", again.UUID, msg.UUID)
	}
}

// TestUnmarshalKeepsWatermillUUIDAndKeyHeader: a record the bus produced keeps its UUID,
// and a key header wins over the record key.
func TestUnmarshalKeepsWatermillUUIDAndKeyHeader(t *testing.T) {
	m := keyMarshaler{key: modelevent.MetadataKey}
	km := &sarama.ConsumerMessage{
		Topic: "orders", Key: []byte("record-key"),
		Headers: []*sarama.RecordHeader{
			{Key: []byte(kafka.UUIDHeaderKey), Value: []byte("0190a3c4-0000-7000-8000-000000000001")},
			{Key: []byte(modelevent.MetadataKey), Value: []byte("header-key")},
		},
	}
	msg, _ := m.Unmarshal(km)
	if msg.UUID != "0190a3c4-0000-7000-8000-000000000001" {
		t.Errorf("UUID %q", msg.UUID)
	}
	if got := msg.Metadata.Get(modelevent.MetadataKey); got != "header-key" {
		t.Errorf("key %q, want the header's header-key", got)
	}
	if _, ok := msg.Metadata[kafka.UUIDHeaderKey]; ok {
		t.Error("UUID header left in the metadata")
	}
}

// TestUnmarshalLongTopicHashesPosition: a position longer than the store's 64
// characters becomes a name-based UUID, stable and distinct per offset.
func TestUnmarshalLongTopicHashesPosition(t *testing.T) {
	m := keyMarshaler{key: modelevent.MetadataKey}
	topic := strings.Repeat("t", 200)
	a, _ := m.Unmarshal(&sarama.ConsumerMessage{Topic: topic, Offset: 1})
	b, _ := m.Unmarshal(&sarama.ConsumerMessage{Topic: topic, Offset: 1})
	c, _ := m.Unmarshal(&sarama.ConsumerMessage{Topic: topic, Offset: 2})
	v8 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !v8.MatchString(a.UUID) {
		t.Fatalf("UUID %q is not a version 8 UUID", a.UUID)
	}
	if a.UUID != b.UUID || a.UUID == c.UUID {
		t.Fatalf("offset 1: %s and %s, offset 2: %s", a.UUID, b.UUID, c.UUID)
	}
	if a.UUID != msgid.UUID("kafka:"+topic+"/0/1") {
		t.Fatalf("UUID %s is not msgid.UUID of the position", a.UUID)
	}
}

// TestUnmarshalOverlongUUIDIsPoisoned: a UUID header longer than the store keeps is a
// decode error, and the message still has a usable UUID.
func TestUnmarshalOverlongUUIDIsPoisoned(t *testing.T) {
	m := keyMarshaler{key: modelevent.MetadataKey}
	msg, err := m.Unmarshal(&sarama.ConsumerMessage{Topic: "t", Partition: 1, Offset: 9, Headers: []*sarama.RecordHeader{
		{Key: []byte(kafka.UUIDHeaderKey), Value: []byte(strings.Repeat("x", 65))},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if msg.UUID != "kafka:t/1/9" {
		t.Errorf("UUID %q, want kafka:t/1/9", msg.UUID)
	}
	if got := msg.Metadata.Get(modelevent.MetadataDecodeError); !strings.Contains(got, "65 bytes") {
		t.Errorf("decode error %q, want the length", got)
	}
}
