// Package control is the control plane of eventbus, django-eventbus's EventManager: a
// process registry, the consumers' desired state and a command queue, all kept in the
// ModelEvent store's database — nothing else coordinates bus processes — and the
// Inspector, the one admin API under the console and the CLI.
//
// Every bus process (bus.Bus.Run) registers itself and heartbeats with its consumers'
// counters; a process whose heartbeat is older than GoneAfter intervals is shown gone.
// Each heartbeat it applies the desired state (stop or start a consumer, everywhere or
// in one process), and every command poll it claims the commands it can run: a retry
// needs a process that runs the consumer, a replay or redrive any process with a
// publisher. A command is claimed by exactly one process (a conditional UPDATE), runs
// once, and records its outcome; a command nobody claims expires with a reason.
package control
