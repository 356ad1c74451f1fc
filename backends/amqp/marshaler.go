package amqp

import (
	"fmt"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/go-eventbus/eventbus/modelevent"
)

// Metadata keys of AMQP message properties. A consumed message carries its properties
// under them, and a published message gets its properties from them; the correlation
// id property maps to modelevent.MetadataCorrelationID.
const (
	// MetadataMessageID holds the message-id property of a consumed message when it is
	// not the message's UUID (a message without a Watermill UUID takes its message-id
	// as UUID). On publish its value becomes the message-id property; without it the
	// property is the message's UUID.
	MetadataMessageID = "amqp_message_id"
	// MetadataContentType holds the content-type property, e.g. "application/json".
	MetadataContentType = "amqp_content_type"
)

// maxShortstr is the longest value of an AMQP short string property.
const maxShortstr = 255

// marshaler is watermill-amqp's DefaultMarshaler (persistent delivery mode; UUID and
// metadata in the headers) made to accept every delivery, whoever published it, and to
// map the message-id, correlation-id and content-type properties to and from metadata.
//
// Unmarshal never returns an error (watermill-amqp nacks and requeues a delivery it
// cannot unmarshal, so it would come back forever):
//
//   - header values that are not strings become text (see headerText) before
//     DefaultMarshaler reads them, where it refuses them;
//   - a delivery without a Watermill UUID gets deliveryID: its message-id, or a hash
//     of its content;
//   - a delivery whose Watermill UUID header is not a string or is longer than the
//     store keeps, or that DefaultMarshaler still cannot unmarshal, is handed over with
//     deliveryID and modelevent.MetadataDecodeError set to the reason, so the bus
//     poisons it.
type marshaler struct {
	wamqp.DefaultMarshaler
}

var _ wamqp.Marshaler = marshaler{}

// Marshal is DefaultMarshaler's Marshal plus the properties: message-id (the value of
// MetadataMessageID, else the UUID), correlation-id (modelevent.MetadataCorrelationID)
// and content-type (MetadataContentType). A value longer than an AMQP property holds
// (255 bytes) stays in the headers only.
func (m marshaler) Marshal(msg *message.Message) (amqp091.Publishing, error) {
	p, err := m.DefaultMarshaler.Marshal(msg)
	if err != nil {
		return p, err
	}
	id := msg.Metadata.Get(MetadataMessageID)
	if id == "" {
		id = msg.UUID
	}
	p.MessageId = shortstr(id)
	p.CorrelationId = shortstr(msg.Metadata.Get(modelevent.MetadataCorrelationID))
	p.ContentType = shortstr(msg.Metadata.Get(MetadataContentType))
	return p, nil
}

func shortstr(s string) string {
	if len(s) > maxShortstr {
		return ""
	}
	return s
}

// Unmarshal turns a delivery into a message; see marshaler.
func (m marshaler) Unmarshal(d amqp091.Delivery) (*message.Message, error) {
	uuidKey := m.uuidKey()
	raw := d.Headers
	d.Headers = textHeaders(raw, uuidKey)
	msg, err := m.DefaultMarshaler.Unmarshal(d)
	var reason string
	if err != nil {
		reason = fmt.Sprintf("unmarshal: %v", err)
		// Keep the metadata: read the delivery again without its UUID header.
		h := make(amqp091.Table, len(d.Headers))
		for k, v := range d.Headers {
			if k != uuidKey {
				h[k] = v
			}
		}
		d.Headers = h
		if msg, err = m.DefaultMarshaler.Unmarshal(d); err != nil {
			msg = message.NewMessage("", d.Body)
		}
	} else {
		reason = badUUID(uuidKey, msg.UUID)
	}
	if msg.UUID == "" || reason != "" {
		d.Headers = raw
		msg.UUID = deliveryID(d)
	}
	setUnset(msg.Metadata, modelevent.MetadataCorrelationID, d.CorrelationId)
	setUnset(msg.Metadata, MetadataContentType, d.ContentType)
	if d.MessageId != msg.UUID {
		setUnset(msg.Metadata, MetadataMessageID, d.MessageId)
	}
	if reason != "" {
		msg.Metadata.Set(modelevent.MetadataDecodeError, reason)
	}
	return msg, nil
}

// setUnset sets md[key] to v unless v is empty or md has key already (a header of
// that name wins over the property).
func setUnset(md message.Metadata, key, v string) {
	if v == "" {
		return
	}
	if _, set := md[key]; !set {
		md[key] = v
	}
}

func (m marshaler) uuidKey() string {
	if m.MessageUUIDHeaderKey != "" {
		return m.MessageUUIDHeaderKey
	}
	return wamqp.DefaultMessageUUIDHeaderKey
}
