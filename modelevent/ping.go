package modelevent

import (
	"context"
	"fmt"
)

// Ping checks that the database answers, within ctx: a connection of the pool (a new
// one when the idle ones are gone) runs the driver's ping. It is the store's half of
// a readiness check (bus.Pinger).
func (s *SQLStore) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("%s: %w", s.dialect.name, err)
	}
	return nil
}
