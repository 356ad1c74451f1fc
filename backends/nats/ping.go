package nats

import (
	"context"
	"errors"
	"fmt"
	"strings"

	natsgo "github.com/nats-io/nats.go"

	"github.com/go-eventbus/eventbus/bus"
)

var _ bus.Pinger = (*Backend)(nil)

// Ping checks the backend's connections: the publisher's must be connected and
// answer a round trip to the server (PING/PONG) within ctx, and every open
// subscriber's must be connected. While nats.go reconnects, Ping fails at once with
// the connection's status. It implements bus.Pinger.
func (b *Backend) Ping(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	conns := make([]*natsgo.Conn, 0, len(b.subs))
	for s := range b.subs {
		conns = append(conns, s.conn)
	}
	b.mu.Unlock()
	if err := connError(b.conn); err != nil {
		return fmt.Errorf("nats: publisher connection to %s: %w", b.URL(), err)
	}
	for _, c := range conns {
		if err := connError(c); err != nil {
			return fmt.Errorf("nats: %s connection to %s: %w", strings.TrimPrefix(c.Opts.Name, "eventbus "), b.URL(), err)
		}
	}
	if err := b.conn.FlushWithContext(ctx); err != nil {
		switch cerr := connError(b.conn); {
		case cerr != nil: // lost while waiting for the answer
			err = cerr
		case errors.Is(err, natsgo.ErrConnectionClosed):
			err = fmt.Errorf("disconnected while waiting for the answer: %w", err)
		default:
			err = fmt.Errorf("no answer: %w", err)
		}
		return fmt.Errorf("nats: publisher connection to %s: %w", b.URL(), err)
	}
	return nil
}

// connError describes the status of a connection that is not connected.
func connError(c *natsgo.Conn) error {
	switch st := c.Status(); st {
	case natsgo.CONNECTED:
		return nil
	case natsgo.RECONNECTING:
		if err := c.LastError(); err != nil {
			return fmt.Errorf("disconnected, reconnecting (last error: %w)", err)
		}
		return errors.New("disconnected, reconnecting")
	default:
		return fmt.Errorf("%s", strings.ToLower(st.String()))
	}
}
