package amqp

import (
	"encoding/json"
	"fmt"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/go-eventbus/eventbus/internal/msgid"
	"github.com/go-eventbus/eventbus/modelevent"
)

// deliveryID is the message UUID of a delivery without a usable Watermill UUID, the
// same on every redelivery of it: its message-id property when set, through
// msgid.Derive (a name-based UUID of it when it is longer than the store keeps), else
// msgid.UUID of its exchange, routing key, timestamp property, headers (as text, see
// headerText) and body. Two messages published without message-id and with all of
// those equal get the same UUID: they are one row.
func deliveryID(d amqp091.Delivery) string {
	if d.MessageId != "" {
		return msgid.Derive(d.MessageId)
	}
	headers := make(map[string]string, len(d.Headers))
	for k, v := range d.Headers {
		headers[k] = headerText(v)
	}
	h, _ := json.Marshal(headers) // sorted keys; a map of strings always encodes
	name := fmt.Sprintf("amqp %q %q %d %s\n", d.Exchange, d.RoutingKey, d.Timestamp.UnixNano(), h)
	return msgid.UUID(name + string(d.Body))
}

// badUUID says why the Watermill UUID uuid (header key) cannot be a message UUID, or
// returns "".
func badUUID(key, uuid string) string {
	if len(uuid) > modelevent.MaxMessageUUIDLen {
		return fmt.Sprintf("header %s is %d bytes long, at most %d are kept", key, len(uuid), modelevent.MaxMessageUUIDLen)
	}
	return ""
}
