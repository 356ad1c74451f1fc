package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/oklog/ulid/v2"

	"github.com/go-eventbus/eventbus/modelevent"
)

// maxErrorLen caps the error text stored per attempt (a panic's stack can be long).
const maxErrorLen = 8 << 10

type consumerKey struct{}

type consumerInfo struct{ handler, topic string }

// ContextWithConsumer names the handler and topic for the recording middleware when a
// message is handled outside a Watermill router (a retry from the store). Inside a
// router Watermill's own context values are used.
func ContextWithConsumer(ctx context.Context, handler, topic string) context.Context {
	return context.WithValue(ctx, consumerKey{}, consumerInfo{handler, topic})
}

// ConsumerFromContext returns the handler name and topic of the message being handled.
func ConsumerFromContext(ctx context.Context) (handler, topic string) {
	if c, ok := ctx.Value(consumerKey{}).(consumerInfo); ok {
		return c.handler, c.topic
	}
	return message.HandlerNameFromCtx(ctx), message.SubscribeTopicFromCtx(ctx)
}

type deliveryKey struct{}

// delivery collects the attempts of one delivery of a message to one handler.
type delivery struct {
	attempts []modelevent.Attempt
	first    [1]modelevent.Attempt // attempts' backing while there is one, the common case
	written  int                   // attempts already handed to the recorder
	// id is the row id given to the row's first change after a failed attempt, so
	// that the logs of the retries can name the row before it is stored.
	id string
}

func deliveryFrom(ctx context.Context) *delivery {
	d, _ := ctx.Value(deliveryKey{}).(*delivery)
	return d
}

// deliveryContext is the message's context during Consumed, carrying the delivery: the
// two in one allocation (context.WithValue and a delivery were two per message).
type deliveryContext struct {
	context.Context
	d delivery
}

// Value answers the delivery; every other key is the parent's.
func (c *deliveryContext) Value(key any) any {
	if _, ok := key.(deliveryKey); ok {
		return &c.d
	}
	return c.Context.Value(key)
}

// Consumed returns middleware that records every consumed message as a ModelEvent: one row
// per message and handler, updated on redelivery. It writes once per delivery in the
// common case: the outcome with its attempts. Put Attempts inside the retry middleware to
// keep each attempt's start, duration and error; without it a delivery counts as one
// attempt.
//
// When the row cannot be stored the message is nacked with an error wrapping
// ErrNotRecorded, which PoisonQueue never poisons; while the store is unavailable the
// handler does not run and the nack waits (Recorder.WaitHealthy), so an outage slows
// the consumer down instead of spinning it. A row the store refuses for its data gives
// an error wrapping ErrUnrecordable: the message goes to the poison queue with the
// reason.
func (r *Recorder) Consumed(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if err := r.WaitHealthy(msg.Context()); err != nil {
			return nil, err
		}
		parent := msg.Context()
		dc := &deliveryContext{Context: parent}
		d := &dc.d
		d.attempts = d.first[:0]
		msg.SetContext(dc)
		start := time.Now()
		out, err := h(msg)
		msg.SetContext(parent)
		return out, r.recordOutcome(msg, parent, d, start, err)
	}
}

// recordOutcome records the delivery's outcome, err being the handler's, and returns
// the error the message is acked or nacked with. It is a function of its own, never
// inlined: its row (a Change of some 400 bytes) and Record's frame are then not on the
// stack while the handler runs, which would make the stack of the router's goroutine
// (new for every message) grow, and be copied, once more per message.
//
//go:noinline
func (r *Recorder) recordOutcome(msg *message.Message, parent context.Context, d *delivery, start time.Time, err error) error {
	if err != nil && parent.Err() != nil && !IsPermanent(err) {
		// The delivery was abandoned (shutdown, or the subscription closed): the
		// broker delivers it again; the row keeps its last state.
		return fmt.Errorf("%w: %w", ErrAborted, err)
	}
	if len(d.attempts) == 0 && d.written == 0 {
		d.attempts = append(d.attempts, modelevent.Attempt{StartedAt: start, Duration: time.Since(start), Error: errorText(err)})
	}
	status, wait := modelevent.StatusSucceeded, err == nil && r.cfg.Mode == RecordDurable
	plan := scheduledNext(parent, err) // scheduled.go: a failure whose retry is scheduled next
	if err != nil {
		status = modelevent.StatusFailed
		if plan != nil {
			status, wait = modelevent.StatusRetrying, true
		}
	}
	c := r.consumedChange(msg, status, err, d.attempts[d.written:])
	d.written = len(d.attempts)
	// Recording is not cancelled with the message (WriteTimeout bounds it): a
	// context that never ends, without WithoutCancel's allocation.
	if rerr := r.Record(context.Background(), wait, c); rerr != nil {
		return errors.Join(rerr, err)
	}
	if plan != nil {
		plan.recorded = true
	}
	return err
}

// Attempts returns middleware that times each run of the handler and, when a run fails,
// records it right away with status retrying (without waiting for the store), so the
// console shows retries in progress. It belongs inside the retry middleware, beneath
// Consumed; elsewhere it does nothing.
func (r *Recorder) Attempts(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		d := deliveryFrom(msg.Context())
		if d == nil {
			return h(msg)
		}
		if len(d.attempts) > 0 {
			r.retrying(msg, d)
		}
		start := time.Now()
		out, err := h(msg)
		d.attempts = append(d.attempts, modelevent.Attempt{StartedAt: start, Duration: time.Since(start), Error: errorText(err)})
		if err != nil && !IsPermanent(err) && !outcomeNext(msg.Context(), len(d.attempts)) { // scheduled.go
			r.recordRetrying(msg, d, err)
		}
		return out, err
	}
}

// recordRetrying records the failed attempt that d.attempts ends with, without waiting
// for the store, so the console shows the retries in progress. Never inlined, like
// recordOutcome: its row is not on the stack while the handler runs.
//
//go:noinline
func (r *Recorder) recordRetrying(msg *message.Message, d *delivery, err error) {
	c := r.consumedChange(msg, modelevent.StatusRetrying, err, d.attempts[d.written:])
	if d.id == "" {
		d.id = ulid.Make().String()
	}
	// A row stored before (a redelivery) keeps its own id.
	c.Event.ID = d.id
	if rerr := r.Record(context.Background(), false, c); rerr == nil {
		d.written = len(d.attempts)
	}
}

// retrying tells the observer and logs (at debug) that the handler runs msg again
// after the failed attempt d.attempts ends with. Watermill's Retry logs nothing (see
// Retry): this log has the message's keys.
func (r *Recorder) retrying(msg *message.Message, d *delivery) {
	handler, topic := ConsumerFromContext(msg.Context())
	if r.cfg.Observer != nil {
		r.cfg.Observer.Retrying(handler, topic)
	}
	if !r.cfg.Logger.Enabled(msg.Context(), slog.LevelDebug) {
		return
	}
	n := len(d.attempts)
	r.cfg.Logger.Debug("eventbus: retrying handler", "handler", handler, "topic", topic,
		"message_uuid", msg.UUID, "event_id", d.id, "attempt", n+1, "reason", d.attempts[n-1].Error)
}

// MarkPoisoned records that msg, consumed by the handler named in its context, is in
// the poison queue because of reason (for a retry from the store that failed again).
func (r *Recorder) MarkPoisoned(msg *message.Message, reason error) error {
	return r.markPoisoned(msg, reason)
}

// markPoisoned records that msg went to the poison queue because of reason. When the
// store refuses the row for its data (the reason it was poisoned, often), it records
// the row without payload and metadata, which is what the store can keep.
func (r *Recorder) markPoisoned(msg *message.Message, reason error) error {
	c := r.consumedChange(msg, modelevent.StatusPoisoned, reason, nil)
	err := r.RecordDurably(context.Background(), c)
	if errors.Is(err, ErrUnrecordable) {
		c.Event.Payload, c.Event.Metadata = nil, nil
		return r.RecordDurably(context.Background(), c)
	}
	return err
}

func (r *Recorder) consumedChange(msg *message.Message, status modelevent.Status, err error, attempts []modelevent.Attempt) modelevent.Change {
	handler, topic := ConsumerFromContext(msg.Context())
	now := time.Now()
	return modelevent.Change{
		Event: modelevent.ModelEvent{
			MessageUUID:   msg.UUID,
			Direction:     modelevent.Consumed,
			Topic:         topic,
			Model:         msg.Metadata.Get(modelevent.MetadataModel),
			ObjectID:      msg.Metadata.Get(modelevent.MetadataObjectID),
			Change:        modelevent.ChangeType(msg.Metadata.Get(modelevent.MetadataChange)),
			Handler:       handler,
			Backend:       r.cfg.Backend,
			Payload:       msg.Payload,
			Metadata:      maps.Clone(msg.Metadata),
			Status:        status,
			Attempts:      len(attempts),
			LastError:     errorText(err),
			CorrelationID: msg.Metadata.Get(modelevent.MetadataCorrelationID),
			TraceID:       TraceIDOf(msg.Metadata),
			CreatedAt:     now,
			UpdatedAt:     now,
		},
		NewAttempts: attempts,
	}
}

// ProducedChange builds the change that records msg as published to topic (or failing
// to be, when err is not nil) in an attempt that started at start. The change carries a
// new row id, so the caller knows it before the row is stored.
func (r *Recorder) ProducedChange(topic string, msg *message.Message, start time.Time, err error) modelevent.Change {
	return r.producedChange(topic, msg, start, err, make([]modelevent.Attempt, 1))
}

// RecordPublished records msgs as published to topic (or failing to be, when err is
// not nil) in an attempt that started at start: ProducedChange for each message, then
// RecordProduced, with the rows and their attempts in one allocation for a single
// message and two for several. When ids is not nil, ids[i] receives the row id of
// msgs[i] (len(ids) must be len(msgs)).
func (r *Recorder) RecordPublished(ctx context.Context, topic string, msgs []*message.Message, start time.Time, err error, ids []string) error {
	var (
		changes  []modelevent.Change
		attempts []modelevent.Attempt
	)
	if len(msgs) == 1 {
		one := new(struct {
			c [1]modelevent.Change
			a [1]modelevent.Attempt
		})
		changes, attempts = one.c[:], one.a[:]
	} else {
		changes, attempts = make([]modelevent.Change, len(msgs)), make([]modelevent.Attempt, len(msgs))
	}
	for i, m := range msgs {
		changes[i] = r.producedChange(topic, m, start, err, attempts[i:i+1:i+1])
		if ids != nil {
			ids[i] = changes[i].Event.ID
		}
	}
	return r.RecordProduced(ctx, changes...)
}

// producedChange is ProducedChange with its attempt in attempt (length 1).
func (r *Recorder) producedChange(topic string, msg *message.Message, start time.Time, err error, attempt []modelevent.Attempt) modelevent.Change {
	status := modelevent.StatusPublished
	if err != nil {
		status = modelevent.StatusPublishFailed
	}
	now := time.Now()
	c := modelevent.Change{
		Event: modelevent.ModelEvent{
			ID:            ulid.Make().String(),
			MessageUUID:   msg.UUID,
			Direction:     modelevent.Produced,
			Topic:         topic,
			Model:         msg.Metadata.Get(modelevent.MetadataModel),
			ObjectID:      msg.Metadata.Get(modelevent.MetadataObjectID),
			Change:        modelevent.ChangeType(msg.Metadata.Get(modelevent.MetadataChange)),
			Backend:       r.cfg.Backend,
			Payload:       msg.Payload,
			Metadata:      maps.Clone(msg.Metadata),
			Status:        status,
			Attempts:      1,
			LastError:     errorText(err),
			CorrelationID: msg.Metadata.Get(modelevent.MetadataCorrelationID),
			TraceID:       TraceIDOf(msg.Metadata),
			CreatedAt:     now,
			UpdatedAt:     now,
		},
		NewAttempts: attempt,
	}
	attempt[0] = modelevent.Attempt{StartedAt: start, Duration: now.Sub(start), Error: errorText(err)}
	return c
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if s == "" {
		s = fmt.Sprintf("%T", err)
	}
	if len(s) > maxErrorLen {
		s = s[:maxErrorLen] + "… (truncated)"
	}
	return s
}
