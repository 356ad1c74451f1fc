package middleware

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// Chain is the handling chain of eventbus as one Watermill middleware, outermost first:
// poison queue → (Outer: scheduled retries, idempotency) → recording → retry → attempt →
// timeout → panic recovery → handler.
// Every part is optional: a nil Recorder records nothing, an empty PoisonTopic leaves
// failed messages nacked (redelivered), a zero Timeout sets no deadline.
type Chain struct {
	// Recorder records consumed messages; nil records nothing.
	Recorder *Recorder
	// Retry is the retry policy.
	Retry RetryConfig
	// Timeout bounds one attempt of the handler; 0 means no bound.
	Timeout time.Duration
	// PoisonPublisher publishes poisoned messages to PoisonTopic.
	PoisonPublisher message.Publisher
	// PoisonTopic receives messages whose handler failed after every retry.
	PoisonTopic string
	// HandlerRecovers says the handler turns its own panics into errors carrying the
	// stack (a wmmiddleware.RecoveredPanicError, as Watermill's Recoverer makes); the
	// chain then adds no Recoverer, one frame and one deferred closure less per attempt.
	HandlerRecovers bool
	// Outer are middleware between the poison queue and the recording, outermost
	// first: ScheduleRetries and Idempotent; nil adds nothing.
	Outer []message.HandlerMiddleware
	// Trace wraps every attempt, just inside the retry (tracing.Tracer.Middleware: a
	// span per attempt); nil adds nothing.
	Trace message.HandlerMiddleware
}

// Middleware returns the chain as a Watermill middleware, for Router.AddMiddleware or
// Handler.AddMiddleware.
func (c Chain) Middleware() (message.HandlerMiddleware, error) {
	var outer []message.HandlerMiddleware
	if c.PoisonTopic != "" && c.PoisonPublisher != nil {
		var onPoisoned func(*message.Message, error)
		if c.Recorder != nil {
			rec := c.Recorder
			onPoisoned = func(msg *message.Message, reason error) { _ = rec.markPoisoned(msg, reason) }
		}
		pq, err := PoisonQueue(c.PoisonPublisher, c.PoisonTopic, onPoisoned)
		if err != nil {
			return nil, err
		}
		outer = append(outer, pq)
	}
	outer = append(outer, c.Outer...)
	if c.Recorder != nil {
		outer = append(outer, c.Recorder.Consumed)
	}
	retry := Retry(c.Retry)
	outer = append(outer, func(h message.HandlerFunc) message.HandlerFunc { return retryAfterFailure(retry, h) })
	if c.Trace != nil {
		outer = append(outer, c.Trace)
	}
	if c.Recorder != nil {
		outer = append(outer, c.Recorder.Attempts)
	}
	if c.Timeout > 0 {
		outer = append(outer, wmmiddleware.Timeout(c.Timeout))
	}
	if !c.HandlerRecovers {
		outer = append(outer, wmmiddleware.Recoverer)
	}
	return func(h message.HandlerFunc) message.HandlerFunc {
		for i := len(outer) - 1; i >= 0; i-- {
			h = outer[i](h)
		}
		return h
	}, nil
}
