package bus

import (
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/modelevent"
)

// NewChangeMessage returns the message of a model change: object objectID of v's model
// (ModelName(v)) was created, updated or deleted (change; another word of at most 16
// characters works too). The payload is v encoded as JSON (the object's new state, or
// for a deletion whatever consumers need, possibly nil). The metadata carries
// MetadataModel, MetadataObjectID and MetadataChange, so the produced and consumed
// ModelEvents have them as columns and Filter{Model: "shop.Order", ObjectID: "42"}
// lists every event about order 42; and the partition key (MetadataKey) is the object
// id, so backends that partition keep the changes of one object in order. Publish it
// with Publish or PublishTx; a consumer reads the change with DeliveryFromContext.
func NewChangeMessage(v any, objectID string, change modelevent.ChangeType) (*message.Message, error) {
	if objectID == "" {
		return nil, errors.New("eventbus: model change: empty object id")
	}
	if change == "" {
		return nil, fmt.Errorf("eventbus: model change of %s: empty change (want created, updated or deleted)", objectID)
	}
	msg, err := NewModelMessage(v)
	if err != nil {
		return nil, err
	}
	msg.Metadata.Set(modelevent.MetadataObjectID, objectID)
	msg.Metadata.Set(modelevent.MetadataChange, string(change))
	msg.Metadata.Set(modelevent.MetadataKey, objectID)
	return msg, nil
}
