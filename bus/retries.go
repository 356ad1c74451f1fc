package bus

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/middleware"
)

// ConsumerOptions are a consumer's own choices, over the bus-wide defaults of Config.
// The zero value keeps every default.
type ConsumerOptions struct {
	// RetryMode is where this consumer's retries wait: middleware.RetryInline keeps
	// per-key order (the stream waits through the backoff), middleware.RetryScheduled
	// acks the failed message and retries it from the store (the stream moves on). ""
	// takes Config.Retry.Mode. See docs/retries.md.
	RetryMode middleware.RetryMode
	// Idempotent, when not nil, says whether a delivery of a message whose row for
	// this consumer already succeeded is acked without running the handler; nil takes
	// Config.Idempotency.Enabled.
	Idempotent *bool
}

// consumerChain is what a consumer's options add to the bus's chain.
type consumerChain struct {
	schedule   middleware.ScheduleConfig // Retry is the consumer's policy
	idempotent message.HandlerMiddleware // nil: not idempotent
}

// prepareChain adds to chain (the bus's, for consumer name) the middleware opts ask
// for: scheduled retries (the inline retries reduced to Retry.InlineRetries) and the
// idempotency check.
func (b *Bus) prepareChain(chain *middleware.Chain, name string, opts ConsumerOptions) (consumerChain, error) {
	var cc consumerChain
	mode := opts.RetryMode
	if mode == "" {
		mode = b.cfg.Retry.Mode
	}
	if !mode.Valid() {
		return cc, fmt.Errorf("retry mode %q is not a mode (accepted: inline, scheduled)", mode)
	}
	idempotent := b.cfg.Idempotency.Enabled
	if opts.Idempotent != nil {
		idempotent = *opts.Idempotent
	}
	cc.schedule = middleware.ScheduleConfig{Recorder: b.rec, Retry: chain.Retry}
	s, isSQL := b.sqlStore()
	if (mode == middleware.RetryScheduled || idempotent) && !isSQL {
		return cc, ErrNoSchedule
	}
	chain.Outer = nil
	if mode == middleware.RetryScheduled {
		cc.schedule.Store = s
		mw, err := middleware.ScheduleRetries(cc.schedule)
		if err != nil {
			return cc, err
		}
		chain.Outer = append(chain.Outer, mw)
		chain.Retry.MaxRetries = min(chain.Retry.InlineRetries, chain.Retry.MaxRetries)
	}
	if idempotent {
		mw, err := middleware.Idempotent(middleware.IdempotencyConfig{
			Store: s, Holder: b.processID, Handler: name, ClaimTTL: b.cfg.Idempotency.ClaimTTL,
			OnDuplicate: b.metrics.Duplicate,
		})
		if err != nil {
			return cc, err
		}
		cc.idempotent = mw
		chain.Outer = append(chain.Outer, mw)
	}
	return cc, nil
}

// storeRunChain returns the chain of a run from the store's schedule: recording, one
// attempt, the timeout, tracing and (for an idempotent consumer) the claim; no inline
// retries and no poison queue (the scheduler decides what follows).
func (b *Bus) storeRunChain(c *consumer, cc consumerChain, trace message.HandlerMiddleware) (message.HandlerFunc, error) {
	chain := middleware.Chain{Recorder: b.rec, Retry: middleware.RetryConfig{}, Timeout: b.cfg.HandlerTimeout,
		HandlerRecovers: true, Trace: trace}
	if cc.idempotent != nil {
		chain.Outer = []message.HandlerMiddleware{cc.idempotent}
	}
	mw, err := chain.Middleware()
	if err != nil {
		return nil, err
	}
	return mw(c.attempt), nil
}
