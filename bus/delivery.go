package bus

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/modelevent"
)

// Delivery describes the message a handler runs on: what HandlerFunc and a HandleModel
// function can learn from their context with DeliveryFromContext.
type Delivery struct {
	// UUID is the message's UUID (modelevent.ModelEvent.MessageUUID of its rows).
	UUID string
	// Consumer and Topic name the consumer running and the topic it consumes.
	Consumer, Topic string
	// Model, ObjectID and Change are the model change the message carries, if any (see
	// NewChangeMessage); Model is set for every message made by NewModelMessage.
	Model    string
	ObjectID string
	Change   modelevent.ChangeType
	// Attempt is the number of this run of the handler on this delivery of the message:
	// 1 for the first, 2 for the first inline retry, and so on. A redelivery by the
	// broker, or a Retry from the store, starts again at 1; the message's row counts
	// every attempt.
	Attempt int
	// Metadata is the message's metadata. Do not modify it.
	Metadata message.Metadata
}

// DeliveryFromContext returns the delivery a handler's ctx belongs to, and false for a
// context that is not a handler's (or not derived from one).
func DeliveryFromContext(ctx context.Context) (Delivery, bool) {
	d, _ := ctx.Value(deliveryKey{}).(*delivery)
	if d == nil || d.msg == nil {
		return Delivery{}, false
	}
	m := d.msg
	return Delivery{
		UUID: m.UUID, Consumer: d.c.name, Topic: d.c.topic,
		Model:    m.Metadata.Get(modelevent.MetadataModel),
		ObjectID: m.Metadata.Get(modelevent.MetadataObjectID),
		Change:   modelevent.ChangeType(m.Metadata.Get(modelevent.MetadataChange)),
		Attempt:  d.attempts, Metadata: m.Metadata,
	}, true
}
