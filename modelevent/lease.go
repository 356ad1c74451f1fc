package modelevent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Lease is a named right that one process holds until ExpiresAt, kept in the store's
// eventbus_leases table (migration 0005). The bus's pruner holds the lease named
// RetentionLease, so one bus process at a time prunes.
type Lease struct {
	// Name names what the lease is for, e.g. RetentionLease.
	Name string `json:"name"`
	// Holder is the id of the process holding it (a bus process id).
	Holder string `json:"holder"`
	// ExpiresAt is when the lease lapses unless renewed.
	ExpiresAt time.Time `json:"expires_at"`
	// RenewedAt is when the holder last took or renewed it.
	RenewedAt time.Time `json:"renewed_at"`
	// Info is what the holder reports; for RetentionLease the policy in force and the
	// last run, as JSON.
	Info string `json:"info,omitempty"`
}

// Held reports whether the lease was held at now (it had not expired).
func (l Lease) Held(now time.Time) bool { return l.Holder != "" && now.Before(l.ExpiresAt) }

// RetentionLease is the name of the lease the bus's pruner holds.
const RetentionLease = "retention"

// AcquireLease takes the lease name for holder until ttl from now, or renews it if
// holder has it already, and stores info with it. It reports whether holder holds the
// lease: false when another holder's lease has not expired. Taking and renewing are one
// conditional UPDATE (or, for a name never held, one INSERT that skips an existing row),
// so of processes racing for a free lease exactly one wins. Expiry is judged by the
// caller's clock: clocks of the processes must agree to well within ttl.
func (s *SQLStore) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, info string) (bool, error) {
	if name == "" || holder == "" {
		return false, errors.New("modelevent: acquire lease: empty name or holder")
	}
	now := time.Now()
	nowUS, exp := now.UnixMicro(), now.Add(ttl).UnixMicro()
	res, err := s.db.ExecContext(ctx, s.dialect.rebind(`UPDATE eventbus_leases SET holder = ?, expires_at = ?, renewed_at = ?, info = ?`+
		` WHERE name = ? AND (holder = ? OR expires_at <= ?)`), holder, exp, nowUS, info, name, holder, nowUS)
	if err != nil {
		return false, fmt.Errorf("modelevent: acquire lease %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil
	}
	insert := `INSERT INTO eventbus_leases (name, holder, expires_at, renewed_at, info) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`
	if s.dialect.name == DialectMySQL {
		insert = `INSERT IGNORE INTO eventbus_leases (name, holder, expires_at, renewed_at, info) VALUES (?, ?, ?, ?, ?)`
	}
	res, err = s.db.ExecContext(ctx, s.dialect.rebind(insert), name, holder, exp, nowUS, info)
	if err != nil {
		return false, fmt.Errorf("modelevent: acquire lease %q: %w", name, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ReleaseLease gives up the lease name if holder holds it, so another process can take
// it at once instead of after its expiry; its info stays for readers.
func (s *SQLStore) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.db.ExecContext(ctx, s.dialect.rebind(`UPDATE eventbus_leases SET expires_at = ? WHERE name = ? AND holder = ?`),
		time.Now().UnixMicro(), name, holder)
	if err != nil {
		return fmt.Errorf("modelevent: release lease %q: %w", name, err)
	}
	return nil
}

// GetLease returns the lease name as last taken, renewed or released (check Held); a
// lease never taken is returned with an empty Holder.
func (s *SQLStore) GetLease(ctx context.Context, name string) (Lease, error) {
	l := Lease{Name: name}
	var exp, renewed int64
	err := s.db.QueryRowContext(ctx, s.dialect.rebind(`SELECT holder, expires_at, renewed_at, info FROM eventbus_leases WHERE name = ?`), name).
		Scan(&l.Holder, &exp, &renewed, &l.Info)
	if errors.Is(err, sql.ErrNoRows) {
		return l, nil
	}
	if err != nil {
		return Lease{}, fmt.Errorf("modelevent: lease %q: %w", name, err)
	}
	l.ExpiresAt, l.RenewedAt = time.UnixMicro(exp).UTC(), time.UnixMicro(renewed).UTC()
	return l, nil
}
