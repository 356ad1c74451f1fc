package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// Modeler is implemented by values that name their own model, e.g. "shop.Order".
type Modeler interface {
	EventModel() string
}

// ModelName returns the model name of v: its EventModel() if it is a Modeler, else its
// Go type as package.Type (pointers dereferenced), e.g. "shop.Order".
func ModelName(v any) string {
	if m, ok := v.(Modeler); ok {
		return m.EventModel()
	}
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return ""
	}
	return t.String()
}

// NewModelMessage returns a message whose payload is v encoded as JSON and whose model
// is ModelName(v). Set more metadata on it, then Publish it.
func NewModelMessage(v any) (*message.Message, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("eventbus: encode %s: %w", ModelName(v), err)
	}
	msg := NewMessage(payload)
	msg.Metadata.Set(modelevent.MetadataModel, ModelName(v))
	return msg, nil
}

// HandleModel registers fn as the consumer name of topic for the messages of T's model
// (ModelName of a T; a T or *T that is a Modeler names its own). Each payload is decoded
// from JSON into a T. Messages of another model on the topic are acked without running
// fn and without a row for this consumer, as a message redriven for another consumer
// is; a message with no model at all (published raw) is decoded as a T. A payload that
// does not decode is a permanent error: it is not retried and goes to the poison queue
// with the decoding error as the reason. fn learns the message's UUID, object id,
// change and attempt number from DeliveryFromContext(ctx).
func HandleModel[T any](b *Bus, name, topic string, fn func(ctx context.Context, v T) error) error {
	if fn == nil {
		return fmt.Errorf("eventbus: handle %s: nil handler", name)
	}
	model := modelOf[T]()
	return b.handle(name, topic, model, func(ctx context.Context, msg *message.Message) error {
		if m := msg.Metadata.Get(modelevent.MetadataModel); m != "" && m != model {
			// Only a Retry from the store gets here: routed skips these.
			return middleware.Permanent(fmt.Errorf("message %s is a %s; consumer %s handles %s", msg.UUID, m, name, model))
		}
		var v T
		if err := json.Unmarshal(msg.Payload, &v); err != nil {
			return middleware.Permanent(fmt.Errorf("decode %s from message %s: %w", model, msg.UUID, err))
		}
		return fn(ctx, v)
	})
}

// modelOf returns the model name of the values of T: its EventModel when T or *T is a
// Modeler, else ModelName.
func modelOf[T any]() (name string) {
	var zero T
	if m, ok := any(&zero).(Modeler); ok {
		return m.EventModel()
	}
	if m, ok := any(zero).(Modeler); ok {
		defer func() {
			if recover() != nil { // EventModel of a nil pointer T
				name = ModelName(zero)
			}
		}()
		return m.EventModel()
	}
	return ModelName(zero)
}
