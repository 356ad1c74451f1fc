package middleware

import (
	"errors"
	"math"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/ThreeDotsLabs/watermill/message"
)

// RetryConfig is the retry policy: exponential backoff between attempts of a handler.
type RetryConfig struct {
	// MaxRetries is how many times a failed handler runs again; 0 disables retries.
	MaxRetries int `yaml:"max_retries" json:"max_retries"`
	// InitialInterval is the wait before the first retry. Default 100ms.
	InitialInterval time.Duration `yaml:"initial_interval" json:"initial_interval"`
	// MaxInterval caps the wait between retries. Default 10s.
	MaxInterval time.Duration `yaml:"max_interval" json:"max_interval"`
	// Multiplier grows the wait after each retry. Default 2.
	Multiplier float64 `yaml:"multiplier" json:"multiplier"`
	// Jitter randomizes each wait by ± this fraction (0 to 1). Default 0.
	Jitter float64 `yaml:"jitter" json:"jitter"`
	// Mode is where retries wait: RetryInline (default: in the stream, which keeps
	// per-key order) or RetryScheduled (in the store: the message is acked and a live
	// bus process retries it when due). See docs/retries.md.
	Mode RetryMode `yaml:"mode" json:"mode,omitempty"`
	// InlineRetries is, in RetryScheduled mode, how many of the MaxRetries run inline
	// (quick tries, after InitialInterval·Multiplier^k) before the rest are scheduled.
	// Default 0.
	InlineRetries int `yaml:"inline_retries" json:"inline_retries,omitempty"`
}

// DefaultRetry is the retry policy used when none is configured.
var DefaultRetry = RetryConfig{MaxRetries: 5, InitialInterval: 100 * time.Millisecond, MaxInterval: 10 * time.Second, Multiplier: 2}

// WithDefaults returns c with each zero interval and multiplier set to DefaultRetry's
// (MaxInterval at least InitialInterval). MaxRetries is left as it is.
func (c RetryConfig) WithDefaults() RetryConfig {
	if c.InitialInterval <= 0 {
		c.InitialInterval = DefaultRetry.InitialInterval
	}
	if c.MaxInterval <= 0 {
		c.MaxInterval = max(DefaultRetry.MaxInterval, c.InitialInterval)
	}
	if c.Multiplier <= 0 {
		c.Multiplier = DefaultRetry.Multiplier
	}
	return c
}

// Retry returns Watermill's Retry middleware configured by c. Errors marked Permanent
// and ErrNotRecorded are not retried. The message context is reset for every attempt,
// so a timed-out attempt does not cancel the next one.
//
// Watermill's Retry gets no logger (it would log every retry at error level without the
// message's handler, topic or UUID): the recorder's Attempts logs each retry at debug
// with those (and the row id), and counts it for metrics.
func Retry(c RetryConfig) message.HandlerMiddleware {
	c = c.WithDefaults()
	// Watermill's Retry (v1.5) advances its backoff once more per retry when ShouldRetry
	// is set (to fill RetryParams.Delay), so the waits it sleeps are every second value
	// of the sequence: InitialInterval·M, ·M³, ·M⁵… Starting the sequence at I/√M and
	// growing it by √M makes the waits I, I·M, I·M², … as configured. TestRetryDelays
	// measures them, so a Watermill release that changes this is caught.
	m := math.Sqrt(c.Multiplier)
	return wmmiddleware.Retry{
		MaxRetries:          max(c.MaxRetries, 0),
		InitialInterval:     time.Duration(float64(c.InitialInterval) / m),
		MaxInterval:         c.MaxInterval,
		Multiplier:          m,
		RandomizationFactor: c.Jitter,
		ResetContextOnRetry: true,
		ShouldRetry: func(p wmmiddleware.RetryParams) bool {
			return !IsPermanent(p.Err) && !errors.Is(p.Err, ErrNotRecorded)
		},
		Logger: watermill.NopLogger{},
	}.Middleware
}

// retryAfterFailure runs h once and hands the message to retry (a Retry middleware) only
// when that fails. retry's first run of the handler then returns that failure again
// instead of running h a second time, so every wait and every later attempt is still
// Watermill's Retry's, as configured; a delivery whose first attempt succeeds, the
// common case, skips Retry's per-message set-up (its backoff, options and closures:
// six allocations) and its three frames.
func retryAfterFailure(retry message.HandlerMiddleware, h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx := msg.Context()
		out, err := h(msg)
		if err == nil {
			return out, nil
		}
		msg.SetContext(ctx)
		replayed := false
		return retry(func(msg *message.Message) ([]*message.Message, error) {
			if !replayed {
				replayed = true
				return out, err
			}
			return h(msg)
		})(msg)
	}
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying (a malformed message, a validation error):
// the retry middleware gives up at once and the message goes to the poison queue.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked by Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}
