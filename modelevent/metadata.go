package modelevent

// Metadata keys that eventbus reads and writes on Watermill messages.
const (
	// MetadataModel names what the event is about, e.g. "shop.Order".
	MetadataModel = "eventbus_model"
	// MetadataObjectID identifies the object of the model the event is about, e.g. "42"
	// (ModelEvent.ObjectID).
	MetadataObjectID = "eventbus_object_id"
	// MetadataChange says what happened to that object: created, updated or deleted
	// (ModelEvent.Change).
	MetadataChange = "eventbus_change"
	// MetadataCorrelationID ties the events of one flow together. It is the same key as
	// Watermill's middleware.CorrelationIDMetadataKey, so Watermill's CorrelationID
	// middleware and eventbus agree.
	MetadataCorrelationID = "correlation_id"
	// MetadataReplayOf, on a replayed message, holds the id of the ModelEvent it replays.
	MetadataReplayOf = "eventbus_replay_of"
	// MetadataKey is the partition (ordering) key that backends which partition use.
	MetadataKey = "eventbus_key"
)

// MetadataConsumer, on a redriven message, names the one consumer that handles it;
// every other consumer of the topic acks it without running.
const MetadataConsumer = "eventbus_consumer"

// MetadataDecodeError is set by a backend that could not decode a message from the
// wire (say, a payload that does not match its schema); it holds the reason. The bus
// does not run consumers on such a message: it goes to the poison queue with the reason.
const MetadataDecodeError = "eventbus_decode_error"

// MetadataTruncated, on a stored ModelEvent, lists (comma-separated) the columns whose
// value was longer than the column holds and was cut, ending in "…". The full value is
// in the metadata: under its own key for the values that come from metadata
// (correlation_id, model, object id, change), as "eventbus_full_<column>" for the others.
const MetadataTruncated = "eventbus_truncated"

const (
	// MaxMessageUUIDLen is the length of the store's message_uuid column: the longest
	// message UUID it keeps.
	MaxMessageUUIDLen = 64
)
