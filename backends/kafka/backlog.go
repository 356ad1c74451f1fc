package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// Backlog returns the lag of consumer on topic: for each partition, the high-water mark
// minus the group's committed offset, summed. A partition without a committed offset
// counts from its oldest retained message when initial_offset is oldest (what the
// consumer will read), and as 0 when it is newest. Offsets are committed about once a
// second, so the lag trails the acks by that much.
func (b *Backend) Backlog(ctx context.Context, consumer, topic string) (int64, error) {
	if b.isClosed() {
		return 0, ErrClosed
	}
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := b.lag(b.cfg.groupName(consumer), topic)
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return 0, fmt.Errorf("kafka: backlog of consumer %q on %q: %w", consumer, topic, r.err)
		}
		return r.n, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("kafka: backlog of consumer %q on %q: %w", consumer, topic, ctx.Err())
	}
}

func (b *Backend) lag(group, topic string) (int64, error) {
	if err := b.client.RefreshMetadata(topic); err != nil {
		return 0, err
	}
	parts, err := b.client.Partitions(topic)
	if err != nil {
		return 0, err
	}
	committed, err := b.admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	// Some brokers answer "group id not found" for a group that never committed.
	noGroup := errors.Is(err, sarama.ErrGroupIDNotFound) || (err == nil && committed.Err == sarama.ErrGroupIDNotFound)
	if err != nil && !noGroup {
		return 0, fmt.Errorf("list offsets of group %q: %w", group, err)
	}
	if !noGroup && committed.Err != sarama.ErrNoError {
		return 0, fmt.Errorf("list offsets of group %q: %w", group, committed.Err)
	}
	var total int64
	for _, p := range parts {
		end, err := b.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, fmt.Errorf("partition %d: high-water mark: %w", p, err)
		}
		from := int64(-1)
		if blk := committed.GetBlock(topic, p); blk != nil && !noGroup {
			if blk.Err != sarama.ErrNoError {
				return 0, fmt.Errorf("partition %d: committed offset: %w", p, blk.Err)
			}
			from = blk.Offset
		}
		if from < 0 {
			if b.cfg.InitialOffset == OffsetNewest {
				continue
			}
			if from, err = b.client.GetOffset(topic, p, sarama.OffsetOldest); err != nil {
				return 0, fmt.Errorf("partition %d: oldest offset: %w", p, err)
			}
		}
		if end > from {
			total += end - from
		}
	}
	return total, nil
}
