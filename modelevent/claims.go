package modelevent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ConsumedStatus returns the status of the consumed row of (messageUUID, handler), and
// false when there is none. It is one look-up of the natural key.
func (s *SQLStore) ConsumedStatus(ctx context.Context, messageUUID, handler string) (Status, bool, error) {
	var st string
	err := s.db.QueryRowContext(ctx, s.dialect.rebind(`SELECT status FROM eventbus_events WHERE message_uuid = ? AND handler = ?`),
		messageUUID, handler).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("modelevent: status of %s for %s: %w", messageUUID, handler, err)
	}
	return Status(st), true, nil
}

// ClaimRun claims the run of handler on message messageUUID for holder until ttl from
// now (table eventbus_claims, migration 0006). It reports whether holder holds the
// claim: false while another holder's claim has not lapsed. Of holders racing for a
// free claim exactly one wins (an INSERT that skips an existing row, or a conditional
// UPDATE of a lapsed one). taken reports that the claim was a lapsed one of another
// holder (whose run may have finished meanwhile: look at the row again).
func (s *SQLStore) ClaimRun(ctx context.Context, messageUUID, handler, holder string, ttl time.Duration) (won, taken bool, err error) {
	now := time.Now()
	nowUS, exp := now.UnixMicro(), now.Add(ttl).UnixMicro()
	insert := `INSERT INTO eventbus_claims (message_uuid, handler, holder, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (message_uuid, handler) DO NOTHING`
	if s.dialect.name == DialectMySQL {
		insert = `INSERT IGNORE INTO eventbus_claims (message_uuid, handler, holder, expires_at) VALUES (?, ?, ?, ?)`
	}
	res, err := s.db.ExecContext(ctx, s.dialect.rebind(insert), messageUUID, handler, holder, exp)
	if err != nil {
		return false, false, fmt.Errorf("modelevent: claim %s for %s: %w", messageUUID, handler, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, false, nil
	}
	res, err = s.db.ExecContext(ctx, s.dialect.rebind(`UPDATE eventbus_claims SET holder = ?, expires_at = ?`+
		` WHERE message_uuid = ? AND handler = ? AND (holder = ? OR expires_at <= ?)`), holder, exp, messageUUID, handler, holder, nowUS)
	if err != nil {
		return false, false, fmt.Errorf("modelevent: claim %s for %s: %w", messageUUID, handler, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, n == 1, nil
}

// ReleaseRun removes holder's claim on the run of handler on messageUUID, so that a
// redelivery can run it at once (after a failure).
func (s *SQLStore) ReleaseRun(ctx context.Context, messageUUID, handler, holder string) error {
	if _, err := s.db.ExecContext(ctx, s.dialect.rebind(`DELETE FROM eventbus_claims WHERE message_uuid = ? AND handler = ? AND holder = ?`),
		messageUUID, handler, holder); err != nil {
		return fmt.Errorf("modelevent: release claim %s for %s: %w", messageUUID, handler, err)
	}
	return nil
}

// PruneClaims deletes up to limit claims that lapsed before olderThan ago, and returns
// how many it deleted. Claims of succeeded runs are left to lapse (no write per
// message); the bus prunes them in the background.
func (s *SQLStore) PruneClaims(ctx context.Context, olderThan time.Duration, limit int) (int64, error) {
	if limit <= 0 {
		limit = 1000
	}
	cut := time.Now().Add(-olderThan).UnixMicro()
	var q string
	switch s.dialect.name {
	case DialectMySQL:
		q = `DELETE FROM eventbus_claims WHERE expires_at < ? LIMIT ?`
	default:
		q = `DELETE FROM eventbus_claims WHERE (message_uuid, handler) IN (SELECT message_uuid, handler FROM eventbus_claims WHERE expires_at < ? LIMIT ?)`
	}
	res, err := s.db.ExecContext(ctx, s.dialect.rebind(q), cut, limit)
	if err != nil {
		return 0, fmt.Errorf("modelevent: prune claims: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// AddDuplicate counts one duplicate delivery on the consumed row of (messageUUID,
// handler): a delivery acked without running the handler because the row had already
// succeeded.
func (s *SQLStore) AddDuplicate(ctx context.Context, messageUUID, handler string) error {
	if _, err := s.db.ExecContext(ctx, s.dialect.rebind(`UPDATE eventbus_events SET duplicates = duplicates + 1, updated_at = ?`+
		` WHERE message_uuid = ? AND handler = ?`), time.Now().UnixMicro(), messageUUID, handler); err != nil {
		return fmt.Errorf("modelevent: count duplicate of %s for %s: %w", messageUUID, handler, err)
	}
	return nil
}

// duplicatesOf returns the duplicates count of row id.
func (s *SQLStore) duplicatesOf(ctx context.Context, id string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.dialect.rebind(`SELECT duplicates FROM eventbus_events WHERE id = ?`), id).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("modelevent: duplicates of %s: %w", id, err)
	}
	return n, nil
}
