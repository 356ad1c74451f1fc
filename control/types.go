package control

import (
	"errors"
	"time"
)

// State is a consumer's state: running or stopped.
type State string

// The consumer states.
const (
	Running State = "running"
	Stopped State = "stopped"
	// Pending is the state of a consumer registered on a bus that does not run yet; it
	// is never a desired state.
	Pending State = "pending"
)

// Valid reports whether s is Running or Stopped.
func (s State) Valid() bool { return s == Running || s == Stopped }

// Process is one bus process as registered in the store.
type Process struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	Version  string    `json:"version"`
	Backend  string    `json:"backend"`
	Started  time.Time `json:"started_at"`
	LastSeen time.Time `json:"last_seen"`
	// HeartbeatInterval is how often the process reports.
	HeartbeatInterval time.Duration `json:"heartbeat_interval"`
	// Gone is true when the last heartbeat is older than GoneAfter heartbeats: the
	// process died or lost the store. Set by readers.
	Gone      bool             `json:"gone"`
	Consumers []ConsumerStatus `json:"consumers"`
}

// GoneAfter is how many heartbeat intervals without a heartbeat mark a process gone.
const GoneAfter = 3

// ConsumerStatus is one consumer of one process, as last reported.
type ConsumerStatus struct {
	Name  string `json:"name"`
	Topic string `json:"topic"`
	// State is what the consumer is doing: running, stopped or pending.
	State State `json:"state"`
	// Desired is the state the store asks for.
	Desired       State     `json:"desired"`
	Processed     int64     `json:"processed"`
	Failed        int64     `json:"failed"`
	InFlight      int64     `json:"in_flight"`
	LastError     string    `json:"last_error,omitempty"`
	LastMessageAt time.Time `json:"last_message_at,omitzero"`
	// Backlog is the number of messages waiting for the consumer where the backend can
	// tell; -1 when it cannot.
	Backlog int64 `json:"backlog"`
}

// CommandKind is what a command asks a bus process to do.
type CommandKind string

// The command kinds.
const (
	// Retry runs a consumer once on a stored event's message.
	Retry CommandKind = "retry"
	// Replay publishes a stored event's message again to its topic, to every consumer.
	Replay CommandKind = "replay"
	// Redrive publishes a poisoned message again to its original topic, for the consumer
	// that poisoned it only.
	Redrive CommandKind = "redrive"
)

// Valid reports whether k is a known kind.
func (k CommandKind) Valid() bool { return k == Retry || k == Replay || k == Redrive }

// CommandStatus is where a command stands.
type CommandStatus string

// The command statuses.
const (
	CommandPending   CommandStatus = "pending"
	CommandClaimed   CommandStatus = "claimed"
	CommandSucceeded CommandStatus = "succeeded"
	CommandFailed    CommandStatus = "failed"
	CommandExpired   CommandStatus = "expired"
)

// Done reports whether the command has finished.
func (s CommandStatus) Done() bool {
	return s == CommandSucceeded || s == CommandFailed || s == CommandExpired
}

// Command is a request, kept in the store, for a live bus process to act on an event.
type Command struct {
	ID      string      `json:"id"`
	Kind    CommandKind `json:"kind"`
	EventID string      `json:"event_id"`
	// Consumer is the consumer a Retry runs; for Redrive, the consumer that poisoned.
	Consumer string `json:"consumer,omitempty"`
	// ProcessID restricts the command to one process; empty: any process that can.
	ProcessID string        `json:"process_id,omitempty"`
	Status    CommandStatus `json:"status"`
	ClaimedBy string        `json:"claimed_by,omitempty"`
	// Result is what the command produced, e.g. the id of a replayed event.
	Result     string    `json:"result,omitempty"`
	Error      string    `json:"error,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	ClaimedAt  time.Time `json:"claimed_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// Errors of the control plane.
var (
	// ErrUnknownConsumer: no live process runs a consumer of that name.
	ErrUnknownConsumer = errors.New("control: unknown consumer")
	// ErrConflict: the event is not in a state the action applies to (a retry of a
	// produced event without a consumer, a redrive of an event that is not poisoned).
	ErrConflict = errors.New("control: action does not apply")
)
