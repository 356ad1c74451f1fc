package modelevent

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// ErrMalformedID is wrapped by the errors for an id that is not an event id: a message
// UUID given where an event id is wanted, or neither. Such errors wrap ErrNotFound too
// (no event has that id).
var ErrMalformedID = errors.New("malformed id")

// CheckEventID returns nil when id is an event id (ValidID), else an error wrapping
// ErrMalformedID and ErrNotFound that says which kind of id was wanted and which was
// given: event ids are ULIDs of 26 characters (ModelEvent.ID); message UUIDs
// (ModelEvent.MessageUUID) name a message, which has one event per direction and
// consumer — find them with Filter{MessageUUID: id}.
func CheckEventID(id string) error {
	if ValidID(id) {
		return nil
	}
	if _, err := uuid.Parse(id); err == nil {
		return fmt.Errorf("%w %q: want an event id (a 26-character ULID), got a message UUID; a message's events are listed by Filter{MessageUUID: %q}: %w",
			ErrMalformedID, id, id, ErrNotFound)
	}
	return fmt.Errorf("%w %q: want an event id (a 26-character ULID), got neither an event id nor a message UUID: %w", ErrMalformedID, id, ErrNotFound)
}
