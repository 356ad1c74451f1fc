package bus

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// Retry runs the consumer that consumed event id again on the stored message, once,
// through recording: the event's row gets a new attempt and ends succeeded or failed.
// It returns the handler's error; a poisoned event that fails again stays poisoned. It
// refuses an unknown id, a produced event (Replay it instead) and a consumer this bus
// does not run.
func (b *Bus) Retry(ctx context.Context, id string) error {
	ev, err := b.store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("eventbus: retry %s: %w", id, err)
	}
	if ev.Direction != modelevent.Consumed {
		return fmt.Errorf("eventbus: retry %s: it is a %s event; retry runs a consumer on a consumed event (use Replay to publish it again)", id, ev.Direction)
	}
	return b.retry(ctx, ev, ev.Handler)
}

// retryConsumer runs the named consumer once on the message of event id, which may be
// any event of that message (produced, or consumed by another consumer). The run is
// recorded on that consumer's row of the message. The Inspector's Retry reaches it.
func (b *Bus) retryConsumer(ctx context.Context, id, consumer string) error {
	ev, err := b.store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("eventbus: retry %s: %w", id, err)
	}
	return b.retry(ctx, ev, consumer)
}

func (b *Bus) retry(ctx context.Context, ev modelevent.ModelEvent, name string) error {
	c, err := b.lookupConsumer(name)
	if err != nil {
		return fmt.Errorf("eventbus: retry %s: %w", ev.ID, err)
	}
	if b.isClosed() {
		return ErrClosed
	}
	msg := message.NewMessage(ev.MessageUUID, ev.Payload)
	maps.Copy(msg.Metadata, ev.Metadata)
	msg.SetContext(middleware.ContextWithConsumer(ctx, c.name, c.topic))
	chain := middleware.Chain{Recorder: b.rec, Retry: middleware.RetryConfig{}, Timeout: b.cfg.HandlerTimeout}
	mw, err := chain.Middleware()
	if err != nil {
		return err
	}
	_, err = mw(c.attempt)(msg)
	if err != nil && !errors.Is(err, middleware.ErrNotRecorded) && ev.Direction == modelevent.Consumed &&
		ev.Handler == c.name && ev.Status == modelevent.StatusPoisoned {
		// The message is still in the poison queue only: so is its row.
		if perr := b.rec.MarkPoisoned(msg, err); perr != nil {
			err = errors.Join(err, perr)
		}
	}
	if errors.Is(err, middleware.ErrNotRecorded) {
		return fmt.Errorf("eventbus: retry %s: %w", ev.ID, err)
	}
	if err != nil {
		return fmt.Errorf("eventbus: retry %s with consumer %s: %w", ev.ID, c.name, err)
	}
	return nil
}

// Replay publishes the message of event id again to its topic, as a new message (new
// UUID, same payload and metadata, MetadataReplayOf set to id) with its own produced
// row, and returns that row's id. Every consumer of the topic receives it.
func (b *Bus) Replay(ctx context.Context, id string) (string, error) {
	ev, err := b.store.Get(ctx, id)
	if err != nil {
		return "", fmt.Errorf("eventbus: replay %s: %w", id, err)
	}
	return b.republish(ctx, ev, ev.Topic)
}

func (b *Bus) republish(ctx context.Context, ev modelevent.ModelEvent, topic string) (string, error) {
	if b.isClosed() {
		return "", ErrClosed
	}
	msg := NewMessage(ev.Payload)
	maps.Copy(msg.Metadata, ev.Metadata)
	for _, k := range []string{middleware.PoisonReasonKey, middleware.PoisonedTopicKey, middleware.PoisonedHandlerKey, middleware.PoisonedConsumerKey} {
		delete(msg.Metadata, k)
	}
	msg.Metadata.Set(modelevent.MetadataReplayOf, ev.ID)
	if msg.Metadata.Get(modelevent.MetadataCorrelationID) == "" {
		msg.Metadata.Set(modelevent.MetadataCorrelationID, ev.MessageUUID)
	}
	ids, err := b.publish(ctx, topic, msg)
	if err != nil {
		return "", fmt.Errorf("eventbus: replay %s: %w", ev.ID, err)
	}
	return ids[0], nil
}
