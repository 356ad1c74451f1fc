// Package embedlink lets the nats backend start an in-process NATS server without
// importing nats-server: package backends/nats/embedded registers the server here from
// init, so only programs that import it link the server (about 10 MiB stripped).
package embedlink

import (
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

// Import is the import that links the embedded server into a program.
const Import = "github.com/go-eventbus/eventbus/backends/nats/embedded"

// Options configures the embedded server.
type Options struct {
	// StoreDir is the JetStream directory, an absolute path.
	StoreDir string
	// Port on 127.0.0.1; 0 picks a free port.
	Port int
	// Username and Password, or Token, are the credentials clients must present.
	Username, Password, Token string
	// ReadyTimeout bounds the wait for the server to accept connections.
	ReadyTimeout time.Duration
	// Logger receives the server's logs.
	Logger watermill.LoggerAdapter
}

// Server is a NATS server with JetStream running in this process.
type Server interface {
	// URL is the address clients connect to.
	URL() string
	// Start starts the server again after Shutdown, on the same port and store
	// directory; it does nothing while the server runs.
	Start() error
	// Shutdown stops the server and waits for it; its files stay. It is idempotent.
	Shutdown()
}

// StartFunc starts a server.
type StartFunc func(Options) (Server, error)

var start StartFunc

// Register is called by package embedded's init. It panics if called twice or with nil.
func Register(f StartFunc) {
	if f == nil || start != nil {
		panic("embedlink: Register called twice or with nil")
	}
	start = f
}

// Linked reports whether the embedded server is linked into the program.
func Linked() bool { return start != nil }

// Start starts a server; Linked must be true.
func Start(opts Options) (Server, error) { return start(opts) }
