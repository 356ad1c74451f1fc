// Package all registers every eventbus backend: import it for its side effects when a
// program chooses the backend by config, as the eventbus command does.
//
//	import _ "github.com/go-eventbus/eventbus/backends/all"
//
// The memory backend is built into package bus and needs no import. The store drivers
// are linked by github.com/go-eventbus/eventbus/modelevent/all, the outbox by
// github.com/go-eventbus/eventbus/outbox.
package all

import (
	_ "github.com/go-eventbus/eventbus/backends/amqp"          // registers "amqp"
	_ "github.com/go-eventbus/eventbus/backends/kafka"         // registers "kafka"
	_ "github.com/go-eventbus/eventbus/backends/nats"          // registers "nats"
	_ "github.com/go-eventbus/eventbus/backends/nats/embedded" // nats with embedded: true
	_ "github.com/go-eventbus/eventbus/backends/sql"           // registers "sql"
)
