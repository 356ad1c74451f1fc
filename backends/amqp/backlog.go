package amqp

import (
	"context"
	"errors"
	"fmt"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Backlog returns the number of messages ready in consumer's queue for topic: those
// waiting to be delivered. It implements bus.Backlogger. Messages delivered but not
// yet acked (at most prefetch_count per running subscriber) are not counted: AMQP
// 0-9-1 reports only ready messages (the management HTTP API knows the rest). A
// queue that does not exist yet, because the consumer never subscribed, has a backlog
// of 0. Backlog inspects the queue passively on a channel of its own, on the consumer
// connection, and never declares anything.
func (b *Backend) Backlog(ctx context.Context, consumer, topic string) (int64, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return 0, ErrClosed
	}
	name := b.cfg.queueName(topic, consumer)
	conn := b.subConn.Connection()
	if conn == nil || !b.subConn.IsConnected() {
		return 0, fmt.Errorf("amqp: backlog of queue %q: not connected to the broker (reconnecting)", name)
	}
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		ch, err := conn.Channel()
		if err != nil {
			done <- result{0, err}
			return
		}
		q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
		var amqpErr *amqp091.Error
		if errors.As(err, &amqpErr) && amqpErr.Code == amqp091.NotFound {
			done <- result{0, nil} // the failed declare closed the channel
			return
		}
		_ = ch.Close()
		done <- result{int64(q.Messages), err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return 0, fmt.Errorf("amqp: backlog of queue %q: %w", name, r.err)
		}
		return r.n, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("amqp: backlog of queue %q: %w", name, ctx.Err())
	}
}
