package middleware

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/modelevent"
)

// RetryMode says where a consumer's retries wait.
type RetryMode string

// The retry modes.
const (
	// RetryInline retries in the handler's stream: the stream waits through the
	// backoff (on Kafka its partition, on RabbitMQ with prefetch 1 the consumer), so
	// messages of one key keep their order. The default.
	RetryInline RetryMode = "inline"
	// RetryScheduled acks a failed message on the broker after its quick inline tries
	// (RetryConfig.InlineRetries) and keeps its retry in the store: the row becomes
	// retrying with its next attempt's time, and a live bus process running the consumer
	// runs it when due. The stream moves on; a later message of the same key can be
	// handled before the retried one.
	RetryScheduled RetryMode = "scheduled"
)

// Valid reports whether m is a retry mode ("" is inline).
func (m RetryMode) Valid() bool { return m == "" || m == RetryInline || m == RetryScheduled }

// Backoff returns the wait before retry number n (1 for the first retry) under c:
// InitialInterval·Multiplier^(n-1), capped at MaxInterval, randomized by ± Jitter.
func (c RetryConfig) Backoff(n int) time.Duration {
	c = c.WithDefaults()
	if n < 1 {
		n = 1
	}
	d := float64(c.InitialInterval) * math.Pow(c.Multiplier, float64(n-1))
	if d > float64(c.MaxInterval) {
		d = float64(c.MaxInterval)
	}
	if c.Jitter > 0 {
		d *= 1 + c.Jitter*(2*rand.Float64()-1)
	}
	return time.Duration(d)
}

// ScheduleConfig configures ScheduleRetries.
type ScheduleConfig struct {
	// Store keeps the schedule: the SQL store, or a store forwarding its
	// modelevent.Scheduler methods.
	Store modelevent.Scheduler
	// Recorder records the consumed rows; the chain's own.
	Recorder *Recorder
	// Retry is the policy: MaxRetries counts every retry, inline and scheduled, and the
	// scheduled waits follow Backoff.
	Retry RetryConfig
}

// ScheduleRetries returns middleware, for a chain whose retry middleware makes
// Retry.InlineRetries quick retries, that hands every message still failing after them
// to the store's schedule: the consumed row becomes retrying, a schedule entry says
// when the next attempt is due (Backoff), and the message is acked on the broker.
// Messages past MaxRetries, and errors that are Permanent, ErrNotRecorded, ErrAborted
// or ErrUnrecordable, pass through unchanged (to the poison queue, or nacked). When the
// retry cannot be scheduled the message is nacked with an error wrapping
// ErrNotRecorded, and the broker delivers it again. It belongs between the poison
// queue and the recording (Chain.Outer).
func ScheduleRetries(c ScheduleConfig) (message.HandlerMiddleware, error) {
	if c.Store == nil || c.Recorder == nil {
		return nil, errors.New("retry.mode: scheduled retries need the SQL store (store.driver) and a recorder")
	}
	c.Retry = c.Retry.WithDefaults()
	made := min(c.Retry.InlineRetries, c.Retry.MaxRetries) + 1
	if made > c.Retry.MaxRetries {
		// The inline retries use up the limit: nothing is ever scheduled.
		return func(h message.HandlerFunc) message.HandlerFunc { return h }, nil
	}
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			parent := msg.Context()
			plan := NewRetryPlan(parent, made, true)
			msg.SetContext(plan)
			out, err := h(msg)
			msg.SetContext(parent)
			if err == nil || !Schedulable(err) {
				return out, err
			}
			if plan.Recorded() {
				// The recording stored the row as retrying: only the entry is left.
				err = c.addEntry(parent, msg, made, err)
			} else {
				err = c.Schedule(parent, msg, made, err)
			}
			if err != nil {
				return out, err
			}
			return nil, nil
		}
	}, nil
}

// RetryPlan is the context a message is handled in when a failure of its handler may
// be retried from the store's schedule (ScheduleRetries, and a bus's runs of due
// retries). When the plan says a Schedulable failure is scheduled, Recorder.Consumed
// records that outcome as retrying, in one durable write, instead of failed: the row
// goes from its previous status straight to retrying, never failed in between.
type RetryPlan struct {
	context.Context
	attempts int // runs of the handler in this delivery before its outcome is recorded
	schedule bool
	recorded bool
}

type retryPlanKey struct{}

// NewRetryPlan returns the plan, a context derived from ctx, for a delivery that runs
// the handler up to attempts times (1 + the inline retries) and whose Schedulable
// failure will be scheduled (schedule true) or not (false: past the retry limit, it
// is poisoned; the row is recorded failed first). The last failed attempt is not
// recorded on its own (Recorder.Attempts): the outcome's write follows at once.
func NewRetryPlan(ctx context.Context, attempts int, schedule bool) *RetryPlan {
	return &RetryPlan{Context: ctx, attempts: attempts, schedule: schedule}
}

// Value answers the plan itself for the recording, and ctx's values otherwise.
func (p *RetryPlan) Value(key any) any {
	if _, ok := key.(retryPlanKey); ok {
		return p
	}
	return p.Context.Value(key)
}

// Recorded reports whether the recording stored the failed outcome as retrying.
func (p *RetryPlan) Recorded() bool { return p.recorded }

// scheduledNext returns the plan of a delivery handled in ctx when its failure err is
// to be recorded retrying (its retry is scheduled next), and nil otherwise.
func scheduledNext(ctx context.Context, err error) *RetryPlan {
	if err == nil {
		return nil
	}
	p, _ := ctx.Value(retryPlanKey{}).(*RetryPlan)
	if p == nil || !p.schedule || !Schedulable(err) {
		return nil
	}
	return p
}

// outcomeNext reports whether the attempt number n of a delivery handled in ctx is its
// last before the outcome is recorded, under a RetryPlan.
func outcomeNext(ctx context.Context, n int) bool {
	p, _ := ctx.Value(retryPlanKey{}).(*RetryPlan)
	return p != nil && n >= p.attempts
}

// Schedulable reports whether a failed attempt's err may be retried later: not
// Permanent, and not a failure to record or an abandoned delivery.
func Schedulable(err error) bool {
	return !IsPermanent(err) && !errors.Is(err, ErrNotRecorded) && !errors.Is(err, ErrAborted) && !errors.Is(err, ErrUnrecordable)
}

// Schedule records msg, consumed by the handler named in ctx (ConsumerFromContext), as
// retrying after made attempts ending in cause, and adds its retry to the schedule,
// due after Backoff(made). An error wraps ErrNotRecorded and cause.
func (c ScheduleConfig) Schedule(ctx context.Context, msg *message.Message, made int, cause error) error {
	handler, _ := ConsumerFromContext(msg.Context())
	ch := c.Recorder.consumedChange(msg, modelevent.StatusRetrying, cause, nil)
	if err := c.Recorder.RecordDurably(context.WithoutCancel(ctx), ch); err != nil {
		return errors.Join(fmt.Errorf("%w: schedule retry of %s for %s: %w", ErrNotRecorded, msg.UUID, handler, err), cause)
	}
	return c.addEntry(ctx, msg, made, cause)
}

// addEntry adds the retry of msg, whose row is stored as retrying after made attempts
// ending in cause, to the schedule, due after Backoff(made). An error wraps
// ErrNotRecorded and cause.
func (c ScheduleConfig) addEntry(ctx context.Context, msg *message.Message, made int, cause error) error {
	handler, topic := ConsumerFromContext(msg.Context())
	ctx = context.WithoutCancel(ctx)
	e := modelevent.Scheduled{
		MessageUUID: msg.UUID, Consumer: handler, Kind: modelevent.ScheduleRetry, Topic: topic,
		NextAttemptAt: time.Now().Add(c.Retry.Backoff(made)), Attempts: made, LastError: errorText(cause),
	}
	if err := c.Store.Schedule(ctx, e); err != nil {
		return errors.Join(fmt.Errorf("%w: %w", ErrNotRecorded, err), cause)
	}
	if c.Recorder.cfg.Observer != nil {
		c.Recorder.cfg.Observer.Retrying(handler, topic)
	}
	c.Recorder.cfg.Logger.Debug("eventbus: retry scheduled", "handler", handler, "topic", topic, "message_uuid", msg.UUID,
		"attempts", made, "next_attempt_at", e.NextAttemptAt, "reason", e.LastError)
	return nil
}

// Poison publishes msg, consumed from topic by handler, to the poison topic through
// pub with the metadata Watermill's poison queue sets (PoisonReasonKey, the topic and
// the handler; no subscriber name: no Watermill subscriber delivered it), and records its row poisoned. It is the poison queue of a retry run from
// the store, outside a Watermill router.
func (r *Recorder) Poison(pub message.Publisher, poisonTopic string, msg *message.Message, reason error) error {
	handler, topic := ConsumerFromContext(msg.Context())
	p := msg.Copy()
	p.Metadata = maps.Clone(msg.Metadata)
	p.Metadata.Set(PoisonReasonKey, reason.Error())
	p.Metadata.Set(PoisonedTopicKey, topic)
	p.Metadata.Set(PoisonedHandlerKey, handler)
	if err := pub.Publish(poisonTopic, p); err != nil {
		return fmt.Errorf("poison %s to %q: %w", msg.UUID, poisonTopic, err)
	}
	return r.markPoisoned(msg, reason)
}
