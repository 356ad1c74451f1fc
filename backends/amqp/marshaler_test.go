package amqp

import (
	"regexp"
	"strings"
	"testing"
	"time"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/go-eventbus/eventbus/modelevent"
)

var v8 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestUnmarshalForeignDelivery: a delivery of a plain AMQP publisher with an int32
// header, no Watermill UUID and its properties set is accepted; DefaultMarshaler alone
// refuses it.
func TestUnmarshalForeignDelivery(t *testing.T) {
	d := amqp091.Delivery{
		Exchange: "orders", RoutingKey: "orders",
		MessageId: "legacy-1", CorrelationId: "corr-1", ContentType: "application/json",
		Headers: amqp091.Table{"x-retry-count": int32(3), "source": "legacy"},
		Body:    []byte(`{}`),
	}
	if _, err := (wamqp.DefaultMarshaler{}).Unmarshal(d); err == nil {
		t.Fatal("DefaultMarshaler accepts int32 headers now; the conversion may be unneeded")
	}
	msg, err := marshaler{}.Unmarshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if msg.UUID != "legacy-1" {
		t.Errorf("UUID %q, want the message-id legacy-1", msg.UUID)
	}
	want := map[string]string{
		"x-retry-count": "3", "source": "legacy",
		modelevent.MetadataCorrelationID: "corr-1", MetadataContentType: "application/json",
	}
	for k, v := range want {
		if got := msg.Metadata.Get(k); got != v {
			t.Errorf("metadata %s = %q, want %q", k, got, v)
		}
	}
	if len(msg.Metadata) != len(want) {
		t.Errorf("metadata %v, want only %v (the message-id is the UUID)", msg.Metadata, want)
	}
	if d.Headers["x-retry-count"] != int32(3) {
		t.Error("the delivery's headers were changed")
	}
}

// TestUnmarshalDeliveryID: without a Watermill UUID and message-id, the UUID is a hash
// of the delivery's content, the same on redelivery and different for another body; a
// message-id too long for the store is hashed and kept in the metadata.
func TestUnmarshalDeliveryID(t *testing.T) {
	at := time.Unix(1700000000, 0)
	d := amqp091.Delivery{Exchange: "e", RoutingKey: "k", Timestamp: at, Headers: amqp091.Table{"n": int64(1)}, Body: []byte("a")}
	a, _ := marshaler{}.Unmarshal(d)
	d.Redelivered = true
	b, _ := marshaler{}.Unmarshal(d)
	d.Body = []byte("b")
	c, _ := marshaler{}.Unmarshal(d)
	if !v8.MatchString(a.UUID) || a.UUID != b.UUID || a.UUID == c.UUID {
		t.Fatalf("UUIDs %q, %q (redelivery), %q (other body)", a.UUID, b.UUID, c.UUID)
	}
	long := strings.Repeat("m", 100)
	msg, _ := marshaler{}.Unmarshal(amqp091.Delivery{MessageId: long})
	if !v8.MatchString(msg.UUID) || msg.Metadata.Get(MetadataMessageID) != long {
		t.Fatalf("long message-id: UUID %q, metadata %v", msg.UUID, msg.Metadata)
	}
	// A Watermill UUID wins; a different message-id stays in the metadata.
	msg, _ = marshaler{}.Unmarshal(amqp091.Delivery{MessageId: "m", Headers: amqp091.Table{wamqp.DefaultMessageUUIDHeaderKey: "u"}})
	if msg.UUID != "u" || msg.Metadata.Get(MetadataMessageID) != "m" {
		t.Fatalf("UUID %q, metadata %v", msg.UUID, msg.Metadata)
	}
}

// TestUnmarshalBadUUIDIsPoisoned: a Watermill UUID header that is not a string, or is
// longer than the store keeps, is a decode error; the message keeps its metadata.
func TestUnmarshalBadUUIDIsPoisoned(t *testing.T) {
	cases := []struct {
		uuid   any
		reason string
	}{
		{int32(7), "message UUID is not a string"},
		{strings.Repeat("x", 65), "65 bytes long"},
	}
	for _, c := range cases {
		msg, err := marshaler{}.Unmarshal(amqp091.Delivery{
			MessageId: "bad",
			Headers:   amqp091.Table{wamqp.DefaultMessageUUIDHeaderKey: c.uuid, "n": int32(1)},
			Body:      []byte("p"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if msg.UUID != "bad" || msg.Metadata.Get("n") != "1" || string(msg.Payload) != "p" {
			t.Errorf("%v: UUID %q metadata %v payload %q", c.uuid, msg.UUID, msg.Metadata, msg.Payload)
		}
		if got := msg.Metadata.Get(modelevent.MetadataDecodeError); !strings.Contains(got, c.reason) {
			t.Errorf("%v: decode error %q, want %q", c.uuid, got, c.reason)
		}
	}
}

// TestMarshalProperties: metadata becomes the message-id, correlation-id and
// content-type properties, and they come back as the same metadata.
func TestMarshalProperties(t *testing.T) {
	msg := message.NewMessage("u-1", []byte("p"))
	msg.Metadata.Set(modelevent.MetadataCorrelationID, "corr")
	msg.Metadata.Set(MetadataContentType, "text/plain")
	p, err := marshaler{}.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if p.MessageId != "u-1" || p.CorrelationId != "corr" || p.ContentType != "text/plain" || p.DeliveryMode != amqp091.Persistent {
		t.Fatalf("publishing %+v", p)
	}
	back, _ := marshaler{}.Unmarshal(amqp091.Delivery{Headers: p.Headers, MessageId: p.MessageId, CorrelationId: p.CorrelationId, ContentType: p.ContentType, Body: p.Body})
	if back.UUID != "u-1" || len(back.Metadata) != 2 || back.Metadata.Get(MetadataContentType) != "text/plain" {
		t.Fatalf("round trip: %q %v", back.UUID, back.Metadata)
	}
	msg.Metadata.Set(MetadataMessageID, "legacy-9")
	msg.Metadata.Set(modelevent.MetadataCorrelationID, strings.Repeat("c", 300))
	if p, _ = (marshaler{}).Marshal(msg); p.MessageId != "legacy-9" || p.CorrelationId != "" {
		t.Fatalf("message-id %q, correlation-id %q (too long for a property)", p.MessageId, p.CorrelationId)
	}
}
