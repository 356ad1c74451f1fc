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
// redelivered). onPoisoned, if not nil, is called after a message was poisoned, with
// the reason as Watermill stored it in the message (PoisonReasonKey: the text of the
// handler's error).
func PoisonQueue(pub message.Publisher, topic string, onPoisoned func(msg *message.Message, reason error)) (message.HandlerMiddleware, error) {
	if topic == "" {
		return nil, errors.New("poison_topic: must not be empty")
	}
	if onPoisoned != nil {
		// Told by the publisher, not by wrapping the handler: no closure per message and
		// no frames of ours around Watermill's.
		pub = notifyingPublisher{pub, onPoisoned}
	}
	pq, err := wmmiddleware.PoisonQueueWithFilter(pub, topic, func(err error) bool {
		return !errors.Is(err, ErrNotRecorded) && !errors.Is(err, ErrAborted)
	})
	if err != nil {
		return nil, fmt.Errorf("poison queue %q: %w", topic, err)
	}
	return pq, nil
}

// notifyingPublisher calls onPoisoned for every message the poison queue published.
type notifyingPublisher struct {
	message.Publisher
	onPoisoned func(msg *message.Message, reason error)
}

func (p notifyingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if err := p.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	for _, msg := range msgs {
		p.onPoisoned(msg, errors.New(msg.Metadata.Get(PoisonReasonKey)))
	}
	return nil
}
