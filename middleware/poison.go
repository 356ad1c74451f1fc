package middleware

import (
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// Metadata keys that the poison queue sets on a poisoned message; they are Watermill's.
const (
	PoisonReasonKey     = wmmiddleware.ReasonForPoisonedKey
	PoisonedTopicKey    = wmmiddleware.PoisonedTopicKey
	PoisonedHandlerKey  = wmmiddleware.PoisonedHandlerKey
	PoisonedConsumerKey = wmmiddleware.PoisonedSubscriberKey
)

// PoisonQueue returns Watermill's poison-queue middleware: a message whose handler
// still fails is published to topic with the reason and its origin in metadata, and
// acked. Errors wrapping ErrNotRecorded or ErrAborted are never poisoned (the message is nacked and
// redelivered). onPoisoned, if not nil, is called after a message was poisoned.
func PoisonQueue(pub message.Publisher, topic string, onPoisoned func(msg *message.Message, reason error)) (message.HandlerMiddleware, error) {
	if topic == "" {
		return nil, errors.New("poison_topic: must not be empty")
	}
	pq, err := wmmiddleware.PoisonQueueWithFilter(pub, topic, func(err error) bool {
		return !errors.Is(err, ErrNotRecorded) && !errors.Is(err, ErrAborted)
	})
	if err != nil {
		return nil, fmt.Errorf("poison queue %q: %w", topic, err)
	}
	if onPoisoned == nil {
		return pq, nil
	}
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			var handlerErr error
			out, err := pq(func(msg *message.Message) ([]*message.Message, error) {
				out, err := h(msg)
				handlerErr = err
				return out, err
			})(msg)
			if err == nil && handlerErr != nil {
				onPoisoned(msg, handlerErr)
			}
			return out, err
		}
	}, nil
}
