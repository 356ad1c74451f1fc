package bus

import (
	"context"
	"fmt"
	"maps"
	"os"
	"runtime/debug"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// ProcessID returns this process's id in the store's process registry.
func (b *Bus) ProcessID() string { return b.processID }

// Control returns the control plane kept in the store, or nil when the store has none
// (a store that is not a modelevent.SQLDatabase) or Process.Disabled is set.
func (b *Bus) Control() *control.Store { return b.ctl }

// Inspector returns the admin API over this bus's store and control plane, acting
// directly through this bus where it can (retry with any of its consumers, replay,
// redrive, start and stop).
func (b *Bus) Inspector() *control.Inspector {
	return control.NewInspector(b.store, b.ctl, control.InspectorOptions{Live: live{b}})
}

// live is the bus as the Inspector's control.Live: the calls the control plane needs
// that are no part of the bus's own API.
type live struct{ b *Bus }

var _ control.Live = live{}

func (l live) ProcessID() string { return l.b.processID }

func (l live) HasConsumer(name string) bool {
	l.b.mu.Lock()
	defer l.b.mu.Unlock()
	_, ok := l.b.consumers[name]
	return ok
}

func (l live) RetryConsumer(ctx context.Context, id, consumer string) error {
	return l.b.retryConsumer(ctx, id, consumer)
}

func (l live) Replay(ctx context.Context, id string) (string, error) { return l.b.Replay(ctx, id) }

func (l live) Redrive(ctx context.Context, id string) (string, error) { return l.b.Redrive(ctx, id) }

func (l live) Reconcile(ctx context.Context) error { return l.b.reconcile(ctx) }

func newProcessID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "host"
	}
	if len(host) > 30 {
		host = host[:30]
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), ulid.Make().String()[20:])
}

func binaryVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}

// setupControl prepares the control plane when the store keeps one: when it is a
// modelevent.SQLDatabase (the SQL store, or a store wrapping it).
func (b *Bus) setupControl() {
	b.processID = newProcessID()
	if b.cfg.Process.Disabled {
		return
	}
	if s, ok := b.store.(modelevent.SQLDatabase); ok {
		b.ctl = control.NewStore(s)
	}
}

func (b *Bus) processInfo(ctx context.Context) control.Process {
	host, _ := os.Hostname()
	name := b.cfg.Process.Name
	if name == "" {
		name = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	version := b.cfg.Process.Version
	if version == "" {
		version = binaryVersion()
	}
	desired := b.desiredSnapshot()
	infos := b.Consumers()
	consumers := make([]control.ConsumerStatus, 0, len(infos))
	backlogger, canTell := b.backend.(Backlogger)
	for _, c := range infos {
		st := control.ConsumerStatus{
			Name: c.Name, Topic: c.Topic, State: c.State, Desired: desired[c.Name],
			Processed: c.Processed, Failed: c.Failed, InFlight: c.InFlight,
			LastError: c.LastError, LastMessageAt: c.LastMessageAt, Backlog: -1,
		}
		if canTell {
			bctx, cancel := context.WithTimeout(ctx, time.Second)
			if n, err := backlogger.Backlog(bctx, c.Name, c.Topic); err == nil {
				st.Backlog = n
			}
			cancel()
		}
		consumers = append(consumers, st)
	}
	return control.Process{
		ID: b.processID, Name: name, Host: host, PID: os.Getpid(), Version: version,
		Backend: b.cfg.Backend, Started: b.startedAt, HeartbeatInterval: b.cfg.Process.HeartbeatInterval,
		Consumers: consumers,
	}
}

func (b *Bus) desiredSnapshot() map[string]control.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]control.State, len(b.consumers))
	for name, c := range b.consumers {
		if c.wantRunning {
			out[name] = control.Running
		} else {
			out[name] = control.Stopped
		}
	}
	return out
}

// applyDesiredBeforeRun sets which consumers start, from the store's desired state.
func (b *Bus) applyDesiredBeforeRun(ctx context.Context) {
	if b.ctl == nil {
		return
	}
	desired, err := b.ctl.Desired(ctx, b.processID)
	if err != nil {
		b.log.Warn("eventbus: read consumers' desired state", "error", err)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, c := range b.consumers {
		if st, ok := desired[name]; ok {
			c.wantRunning = st == control.Running
			if !c.wantRunning {
				c.state = control.Stopped
			}
		}
	}
}

// reconcile applies the consumers' desired state from the store now: it stops the
// consumers asked to stop and starts the ones asked to run. Run does it every
// heartbeat; the Inspector at once after it set a desired state.
func (b *Bus) reconcile(ctx context.Context) error {
	if b.ctl == nil {
		return nil
	}
	desired, err := b.ctl.Desired(ctx, b.processID)
	if err != nil {
		return err
	}
	b.mu.Lock()
	type change struct {
		name string
		run  bool
	}
	var changes []change
	for name, c := range b.consumers {
		want := true
		if st, ok := desired[name]; ok {
			want = st == control.Running
		}
		if want != c.wantRunning {
			changes = append(changes, change{name, want})
		}
	}
	b.mu.Unlock()
	for _, ch := range changes {
		var err error
		if ch.run {
			err = b.startConsumer(ctx, ch.name)
		} else {
			err = b.stopConsumer(ctx, ch.name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// runControl heartbeats, reconciles and runs commands until ctx ends.
func (b *Bus) runControl(ctx context.Context) {
	defer close(b.controlDone)
	heartbeat := time.NewTicker(b.cfg.Process.HeartbeatInterval)
	defer heartbeat.Stop()
	poll := time.NewTicker(b.cfg.Process.CommandPollInterval)
	defer poll.Stop()
	b.beat(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-heartbeat.C:
			if err := b.reconcile(ctx); err != nil && ctx.Err() == nil {
				b.log.Warn("eventbus: reconcile consumers", "error", err)
			}
			b.beat(ctx)
		case <-poll.C:
			b.runCommands(ctx)
		}
	}
}

// beat reports the process and tidies the control plane. Failures (the store down)
// are logged once per outage, not every heartbeat.
func (b *Bus) beat(ctx context.Context) {
	var failed error
	if err := b.ctl.Heartbeat(ctx, b.processInfo(ctx)); err != nil {
		failed = fmt.Errorf("heartbeat: %w", err)
	} else if _, err := b.ctl.Expire(ctx); err != nil {
		failed = fmt.Errorf("expire commands: %w", err)
	} else if _, err := b.ctl.Prune(ctx, b.cfg.Process.PruneAfter); err != nil {
		failed = fmt.Errorf("prune processes: %w", err)
	}
	switch {
	case ctx.Err() != nil:
	case failed != nil:
		b.controlOutage.fail(b.log, failed)
	default:
		b.controlOutage.ok(b.log)
	}
}

func (b *Bus) runCommands(ctx context.Context) {
	b.mu.Lock()
	names := append([]string(nil), b.order...)
	b.mu.Unlock()
	cmds, err := b.ctl.Claim(ctx, b.processID, names, 16)
	if err != nil && ctx.Err() == nil {
		b.log.Warn("eventbus: claim commands", "error", err)
	}
	for _, c := range cmds {
		var result string
		var err error
		switch c.Kind {
		case control.Retry:
			err = b.retryConsumer(ctx, c.EventID, c.Consumer)
		case control.Replay:
			result, err = b.Replay(ctx, c.EventID)
		case control.Redrive:
			result, err = b.Redrive(ctx, c.EventID)
		default:
			err = fmt.Errorf("unknown command kind %q", c.Kind)
		}
		b.log.Info("eventbus: ran command", "command", c.ID, "kind", c.Kind, "event", c.EventID, "consumer", c.Consumer, "error", err)
		if ferr := b.ctl.Finish(context.WithoutCancel(ctx), c.ID, result, err); ferr != nil {
			b.log.Warn("eventbus: finish command", "command", c.ID, "error", ferr)
		}
	}
}

// Redrive publishes the message of a poisoned consumed event again to its topic, as a
// new message that only the consumer that poisoned it handles (every other consumer of
// the topic acks it unseen), and returns the new produced event's id.
func (b *Bus) Redrive(ctx context.Context, id string) (string, error) {
	ev, err := b.store.Get(ctx, id)
	if err != nil {
		return "", fmt.Errorf("eventbus: redrive %s: %w", id, err)
	}
	if ev.Direction != modelevent.Consumed || (ev.Status != modelevent.StatusPoisoned && ev.Status != modelevent.StatusFailed) {
		return "", fmt.Errorf("eventbus: redrive %s: only a poisoned or failed consumed event can be redriven; this one is %s %s", id, ev.Direction, ev.Status)
	}
	if b.isClosed() {
		return "", ErrClosed
	}
	msg := NewMessage(ev.Payload)
	maps.Copy(msg.Metadata, ev.Metadata)
	for _, k := range []string{middleware.PoisonReasonKey, middleware.PoisonedTopicKey, middleware.PoisonedHandlerKey, middleware.PoisonedConsumerKey} {
		delete(msg.Metadata, k)
	}
	msg.Metadata.Set(modelevent.MetadataReplayOf, ev.ID)
	msg.Metadata.Set(modelevent.MetadataConsumer, ev.Handler)
	ids, err := b.publish(ctx, ev.Topic, msg)
	if err != nil {
		return "", fmt.Errorf("eventbus: redrive %s: %w", id, err)
	}
	return ids[0], nil
}
