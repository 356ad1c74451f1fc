package memory

import "context"

// Ping returns nil until the backend is closed, then ErrClosed: the broker is this
// process. It implements bus.Pinger.
func (b *Backend) Ping(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	return nil
}
