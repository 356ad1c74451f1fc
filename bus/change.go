package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/modelevent"
)

// ModelChange is a model-change event: Data, an object of Model identified by ObjectID,
// was created, updated or deleted. Its message carries Model, ObjectID and Change in
// metadata, so the produced and consumed ModelEvents have them as columns and
// Filter{Model: "shop.Order", ObjectID: "42"} lists every event about order 42.
type ModelChange struct {
	// Model names the model, e.g. "shop.Order"; empty means ModelName(Data).
	Model string
	// ObjectID identifies the object, e.g. its primary key "42". Required.
	ObjectID string
	// Change is what happened: modelevent.Created, Updated, Deleted (or another word of
	// at most 16 characters). Required.
	Change modelevent.ChangeType
	// Data is the payload, encoded as JSON (the object's new state, or for a deletion
	// whatever consumers need, possibly nil).
	Data any
}

// Message returns the message of the change: Data as JSON, and the metadata
// MetadataModel, MetadataObjectID and MetadataChange. The partition key
// (modelevent.MetadataKey) is the object id, so backends that partition keep the
// changes of one object in order.
func (c ModelChange) Message() (*message.Message, error) {
	if c.ObjectID == "" {
		return nil, errors.New("eventbus: model change: empty object id")
	}
	if c.Change == "" {
		return nil, fmt.Errorf("eventbus: model change of %s: empty change (want created, updated or deleted)", c.ObjectID)
	}
	msg, err := NewModelMessage(c.Data)
	if err != nil {
		return nil, err
	}
	if c.Model != "" {
		msg.Metadata.Set(modelevent.MetadataModel, c.Model)
	}
	msg.Metadata.Set(modelevent.MetadataObjectID, c.ObjectID)
	msg.Metadata.Set(modelevent.MetadataChange, string(c.Change))
	msg.Metadata.Set(modelevent.MetadataKey, c.ObjectID)
	return msg, nil
}

// NewChangeMessage returns the message of a change to object objectID of v's model
// (ModelName(v)): v encoded as JSON, with model, object id, change and partition key in
// metadata. See ModelChange.Message.
func NewChangeMessage(v any, objectID string, change modelevent.ChangeType) (*message.Message, error) {
	return ModelChange{ObjectID: objectID, Change: change, Data: v}.Message()
}

// PublishChange publishes a change to object objectID of v's model to topic (see
// NewChangeMessage) and returns the message's UUID. The produced ModelEvent has
// ObjectID and Change set.
func (b *Bus) PublishChange(ctx context.Context, topic string, v any, objectID string, change modelevent.ChangeType) (string, error) {
	msg, err := NewChangeMessage(v, objectID, change)
	if err != nil {
		return "", err
	}
	if err := b.Publish(ctx, topic, msg); err != nil {
		return "", err
	}
	return msg.UUID, nil
}

// ChangeOf returns the model, object id and change carried by a consumed message's
// metadata; Data is not decoded (it is msg.Payload).
func ChangeOf(msg *message.Message) ModelChange {
	return ModelChange{
		Model:    msg.Metadata.Get(modelevent.MetadataModel),
		ObjectID: msg.Metadata.Get(modelevent.MetadataObjectID),
		Change:   modelevent.ChangeType(msg.Metadata.Get(modelevent.MetadataChange)),
	}
}
