package nats

import (
	"errors"
	"fmt"
	"slices"

	natsgo "github.com/nats-io/nats.go"
)

// topicStream checks topic and returns its subject and the stream that holds it: the
// stream whose subjects cover the subject if there is one, else (with auto_provision)
// a new stream named StreamName(topic). Results are cached.
func (b *Backend) topicStream(js natsgo.JetStreamContext, topic string) (subject, stream string, err error) {
	subject = b.cfg.Subject(topic)
	if err := checkSubject(topic, subject); err != nil {
		return "", "", err
	}
	if s, ok := b.streams.Load(subject); ok {
		return subject, s.(string), nil
	}
	stream, err = js.StreamNameBySubject(subject)
	switch {
	case err == nil:
	case !errors.Is(err, natsgo.ErrNoMatchingStream):
		return "", "", fmt.Errorf("nats: find the stream of subject %q: %w", subject, err)
	case !b.cfg.autoProvision():
		return "", "", fmt.Errorf("nats: no stream holds subject %q of topic %q and backend_settings.auto_provision is false: create one (e.g. nats stream add %s --subjects %s) or set auto_provision: true",
			subject, topic, b.cfg.StreamName(topic), subject)
	default:
		if stream, err = b.addStream(js, topic, subject); err != nil {
			return "", "", err
		}
	}
	b.streams.Store(subject, stream)
	return subject, stream, nil
}

// addStream creates the stream of topic.
func (b *Backend) addStream(js natsgo.JetStreamContext, topic, subject string) (string, error) {
	name := b.cfg.StreamName(topic)
	sc := &natsgo.StreamConfig{
		Name:        name,
		Description: "eventbus topic " + topic,
		Subjects:    []string{subject},
		Storage:     natsgo.FileStorage,
		Replicas:    b.cfg.Replicas,
		MaxAge:      b.cfg.MaxAge,
	}
	if b.cfg.Storage == "memory" {
		sc.Storage = natsgo.MemoryStorage
	}
	_, err := js.AddStream(sc)
	if err == nil {
		b.logger.Info("nats: stream created", map[string]any{"stream": name, "subject": subject})
		return name, nil
	}
	// Another process may have created it meanwhile, or the name is taken by the
	// stream of another topic that maps to the same name.
	info, ierr := js.StreamInfo(name)
	if ierr != nil {
		return "", fmt.Errorf("nats: create stream %q for topic %q: %w", name, topic, err)
	}
	if !slices.Contains(info.Config.Subjects, subject) {
		return "", fmt.Errorf("nats: topic %q maps to stream %q, which already holds subjects %v (%s); rename the topic or set backend_settings.stream_prefix",
			topic, name, info.Config.Subjects, info.Config.Description)
	}
	return name, nil
}

// ensureConsumer creates, or updates to the current settings, the durable consumer of
// the bus consumer named consumer on stream, filtered to subject.
func (b *Backend) ensureConsumer(js natsgo.JetStreamContext, stream, subject, consumer string) error {
	durable := b.cfg.DurableName(consumer)
	want := natsgo.ConsumerConfig{
		Durable:        durable,
		Description:    "eventbus consumer " + consumer,
		DeliverSubject: deliverSubject(stream, durable),
		DeliverGroup:   b.cfg.QueueGroup(consumer),
		FilterSubject:  subject,
		AckPolicy:      natsgo.AckExplicitPolicy,
		AckWait:        b.cfg.AckWait,
		MaxAckPending:  b.cfg.MaxAckPending,
		MaxDeliver:     -1,
		DeliverPolicy:  natsgo.DeliverAllPolicy,
	}
	if b.cfg.DeliverPolicy == "new" {
		want.DeliverPolicy = natsgo.DeliverNewPolicy
	}
	info, err := js.ConsumerInfo(stream, durable)
	if errors.Is(err, natsgo.ErrConsumerNotFound) {
		if _, err = js.AddConsumer(stream, &want); err == nil {
			b.logger.Debug("nats: consumer created", map[string]any{"stream": stream, "durable": durable, "queue_group": want.DeliverGroup})
			return nil
		}
		// Another process may have created it meanwhile.
		info, err = js.ConsumerInfo(stream, durable)
	}
	if err != nil {
		return fmt.Errorf("nats: consumer %q on stream %q: %w", durable, stream, err)
	}
	have := info.Config
	if have.Description != want.Description {
		return fmt.Errorf("nats: consumer %q maps to durable %q on stream %q, which belongs to %q; rename the consumer or set backend_settings.durable_prefix",
			consumer, durable, stream, have.Description)
	}
	if have.FilterSubject != subject {
		return fmt.Errorf("nats: durable %q on stream %q reads subject %q, not %q; one bus consumer reads one topic of a stream", durable, stream, have.FilterSubject, subject)
	}
	if have.DeliverSubject == "" {
		return fmt.Errorf("nats: durable %q on stream %q is a pull consumer; delete it (nats consumer rm %s %s) to let eventbus create its push consumer", durable, stream, stream, durable)
	}
	if have.AckWait == want.AckWait && have.MaxAckPending == want.MaxAckPending && have.DeliverGroup == want.DeliverGroup {
		return nil
	}
	// Settings changed: keep what cannot change, update the rest.
	want.DeliverSubject = have.DeliverSubject
	want.DeliverPolicy = have.DeliverPolicy
	want.OptStartSeq, want.OptStartTime = have.OptStartSeq, have.OptStartTime
	if _, err := js.UpdateConsumer(stream, &want); err != nil {
		return fmt.Errorf("nats: update durable %q on stream %q to the current ack_wait, max_ack_pending and queue group: %w", durable, stream, err)
	}
	return nil
}
