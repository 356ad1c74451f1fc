package control

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/go-eventbus/eventbus/modelevent"
)

// Deletable reports whether DeleteEvent accepts ev: a consumed event that is poisoned
// or failed.
func Deletable(ev modelevent.ModelEvent) bool {
	return ev.Direction == modelevent.Consumed && (ev.Status == modelevent.StatusPoisoned || ev.Status == modelevent.StatusFailed)
}

// DeleteEvent deletes the row of a consumed event that is poisoned or failed, with
// its attempts: the operator has dealt with it (resolved it by hand, or decided it
// needs nothing) and it leaves the failure lists. The message is not published
// again. An event in another state is refused with ErrConflict, an unknown one with
// modelevent.ErrNotFound.
func (s *Store) DeleteEvent(ctx context.Context, id string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("control: delete event %s: %w", id, err)
	}
	defer func() { _ = tx.Rollback() }()
	var msg, dir, handler, status string
	err = tx.QueryRowContext(ctx, s.q(`SELECT message_uuid, direction, handler, status FROM eventbus_events WHERE id = ?`), id).Scan(&msg, &dir, &handler, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %s", modelevent.ErrNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("control: delete event %s: %w", id, err)
	}
	if !Deletable(modelevent.ModelEvent{Direction: modelevent.Direction(dir), Status: modelevent.Status(status)}) {
		return fmt.Errorf("%w: delete %s: only a poisoned or failed consumed event can be deleted; this one is %s %s", ErrConflict, id, dir, status)
	}
	r, err := tx.ExecContext(ctx, s.q(`DELETE FROM eventbus_events WHERE id = ? AND status = ?`), id, status)
	if err != nil {
		return fmt.Errorf("control: delete event %s: %w", id, err)
	}
	if n, _ := r.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: delete %s: its status changed meanwhile", ErrConflict, id)
	}
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM eventbus_attempts WHERE message_uuid = ? AND direction = ? AND handler = ?`), msg, dir, handler); err != nil {
		return fmt.Errorf("control: delete attempts of event %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("control: delete event %s: %w", id, err)
	}
	return nil
}

// Delete deletes a poisoned or failed consumed event with its attempts (see
// Store.DeleteEvent): the console's and the CLI's "resolve".
func (i *Inspector) Delete(ctx context.Context, id string) error {
	ctl, err := i.control()
	if err != nil {
		return err
	}
	return ctl.DeleteEvent(ctx, id)
}
