package nats

// The tests run the backend on the embedded server too.
import _ "github.com/go-eventbus/eventbus/backends/nats/embedded"
