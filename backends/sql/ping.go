package sqlbackend

import (
	"context"
	"fmt"

	"github.com/go-eventbus/eventbus/bus"
)

var _ bus.Pinger = (*Backend)(nil)

// Ping checks that the database answers, within ctx, on a connection of the backend's
// pool (a new one when the idle ones are gone). It implements bus.Pinger.
func (b *Backend) Ping(ctx context.Context) error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return ErrClosed
	}
	var err error
	switch {
	case b.pool != nil:
		err = b.pool.Ping(ctx)
	case b.sqlDB != nil:
		err = b.sqlDB.PingContext(ctx)
	}
	if err != nil {
		return fmt.Errorf("sql: %s at %q: %s", b.cfg.Driver, RedactDSN(b.cfg.Driver, b.cfg.DSN), redactErr(err, b.cfg.DSN))
	}
	return nil
}
