package nats

import (
	"context"
	"errors"
	"fmt"

	natsgo "github.com/nats-io/nats.go"
)

// Backlog returns how many messages of topic wait for consumer: the durable
// consumer's NumPending (not yet delivered) plus NumAckPending (delivered, not yet
// acked). Before the consumer first subscribed it is what it will receive: the
// messages of the topic in its stream (deliver_policy all) or 0 (new). A topic without
// stream has no backlog.
func (b *Backend) Backlog(ctx context.Context, consumer, topic string) (int64, error) {
	if b.isClosed() {
		return 0, ErrClosed
	}
	subject := b.cfg.Subject(topic)
	if err := checkSubject(topic, subject); err != nil {
		return 0, err
	}
	stream, err := b.js.StreamNameBySubject(subject, natsgo.Context(ctx))
	if errors.Is(err, natsgo.ErrNoMatchingStream) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("nats: backlog of %s on %q: %w", consumer, topic, err)
	}
	info, err := b.js.ConsumerInfo(stream, b.cfg.DurableName(consumer), natsgo.Context(ctx))
	if err == nil {
		return int64(info.NumPending) + int64(info.NumAckPending), nil
	}
	if !errors.Is(err, natsgo.ErrConsumerNotFound) {
		return 0, fmt.Errorf("nats: backlog of %s on %q: %w", consumer, topic, err)
	}
	if b.cfg.DeliverPolicy == "new" {
		return 0, nil
	}
	si, err := b.js.StreamInfo(stream, &natsgo.StreamInfoRequest{SubjectsFilter: subject}, natsgo.Context(ctx))
	if err != nil {
		return 0, fmt.Errorf("nats: backlog of %s on %q: %w", consumer, topic, err)
	}
	return int64(si.State.Subjects[subject]), nil
}
