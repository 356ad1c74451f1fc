package amqp

import (
	"context"
	"errors"
	"fmt"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"

	"github.com/go-eventbus/eventbus/bus"
)

var _ bus.Pinger = (*Backend)(nil)

// Ping checks that the publisher's and the consumers' connections are open. While one
// reconnects (the broker went away, or missed heartbeats), Ping fails at once naming
// it. It sends nothing: AMQP heartbeats (every 10s) find a dead broker. It implements
// bus.Pinger.
func (b *Backend) Ping(context.Context) error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return ErrClosed
	}
	for _, c := range []struct {
		role string
		conn *wamqp.ConnectionWrapper
	}{{"publisher", b.pubConn}, {"consumer", b.subConn}} {
		if err := connError(c.conn); err != nil {
			return fmt.Errorf("amqp: %s connection to %s: %w", c.role, redact(b.cfg.URL), err)
		}
	}
	return nil
}

// connError says why c is not open.
func connError(c *wamqp.ConnectionWrapper) error {
	switch {
	case c.Closed():
		return errors.New("closed")
	case !c.IsConnected():
		return errors.New("disconnected, reconnecting")
	}
	if conn := c.Connection(); conn == nil || conn.IsClosed() {
		return errors.New("disconnected, reconnecting")
	}
	return nil
}
