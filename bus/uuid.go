package bus

import (
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
)

// NewUUID returns a new message UUID: a version 7 UUID, which sorts by creation time.
// The bus gives one to every message published without a UUID. Time-ordered UUIDs keep
// the store's index on message UUIDs append-only, which makes recording several times
// faster than with random (version 4) UUIDs on large tables.
func NewUUID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return watermill.NewUUID()
	}
	return id.String()
}

// NewMessage returns a Watermill message with payload and a NewUUID.
func NewMessage(payload []byte) *message.Message {
	return message.NewMessage(NewUUID(), payload)
}
