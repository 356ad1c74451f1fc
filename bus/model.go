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

// PublishModel publishes v, encoded as JSON, to topic with its model name, and returns
// the message's UUID.
func (b *Bus) PublishModel(ctx context.Context, topic string, v any) (string, error) {
	msg, err := NewModelMessage(v)
	if err != nil {
		return "", err
	}
	if err := b.Publish(ctx, topic, msg); err != nil {
		return "", err
	}
	return msg.UUID, nil
}

// HandleModel registers fn as the consumer name of topic, decoding each payload from
// JSON into a T. A payload that does not decode is a permanent error: it is not retried
// and goes to the poison queue with the decoding error as the reason.
func HandleModel[T any](b *Bus, name, topic string, fn func(ctx context.Context, v T) error) error {
	if fn == nil {
		return fmt.Errorf("eventbus: handle %s: nil handler", name)
	}
	var zero T
	model := ModelName(zero)
	return b.Handle(name, topic, func(ctx context.Context, msg *message.Message) error {
		var v T
		if err := json.Unmarshal(msg.Payload, &v); err != nil {
			return middleware.Permanent(fmt.Errorf("decode %s from message %s: %w", model, msg.UUID, err))
		}
		return fn(ctx, v)
	})
}
