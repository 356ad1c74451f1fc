package modelevent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// localClaims are the run claims of a SQLite store, kept in this process: a claim
// there would be a write transaction per message, serialized with the recorder's
// (SQLite has one writer), which costs more than the delivery. A SQLite file is
// normally used by one process; processes sharing one have the row check only.
type localClaims struct {
	mu sync.Mutex
	m  map[[2]string]localClaim

	// checks are CheckAndClaimMany's prepared look-ups by size bucket (SQLite only:
	// preparing the SELECT costs more than running it, and pgx caches statements
	// itself), closed by Close.
	checkMu sync.Mutex
	checks  [checkBuckets]*sql.Stmt
}

// checkBuckets is the number of look-up sizes: 1, 2, 4, … maxCheckKeys.
const checkBuckets = 9

// maxCheckKeys is the most runs one look-up of CheckAndClaimMany reads; larger calls
// are read in several.
const maxCheckKeys = 1 << (checkBuckets - 1)

// checkBucket returns the bucket of a look-up of n ≤ maxCheckKeys runs: the smallest b
// with n ≤ 1<<b.
func checkBucket(n int) int {
	b := 0
	for 1<<b < n {
		b++
	}
	return b
}

// checkSQL is the look-up of the rows of 1<<bucket message UUIDs.
func (s *SQLStore) checkSQL(bucket int) string {
	return s.dialect.rebind(`SELECT message_uuid, handler, status FROM eventbus_events WHERE message_uuid IN (?` +
		strings.Repeat(", ?", 1<<bucket-1) + `)`)
}

// checkStmt returns the prepared look-up of bucket, preparing it on first use; nil when
// not SQLite or when preparing fails (the look-up then runs unprepared).
func (s *SQLStore) checkStmt(ctx context.Context, bucket int) *sql.Stmt {
	if s.dialect.name != DialectSQLite {
		return nil
	}
	l := &s.local
	l.checkMu.Lock()
	defer l.checkMu.Unlock()
	if st := l.checks[bucket]; st != nil {
		return st
	}
	st, err := s.db.PrepareContext(ctx, s.checkSQL(bucket))
	if err != nil {
		return nil
	}
	l.checks[bucket] = st
	return st
}

// closeChecks closes the prepared look-ups (SQLStore.Close).
func (l *localClaims) closeChecks() {
	l.checkMu.Lock()
	defer l.checkMu.Unlock()
	for i, st := range l.checks {
		if st != nil {
			_ = st.Close()
			l.checks[i] = nil
		}
	}
}

type localClaim struct {
	holder  string
	expires time.Time
}

func (l *localClaims) claim(uuid, handler, holder string, ttl time.Duration) (won, taken bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[[2]string]localClaim{}
	}
	k := [2]string{uuid, handler}
	now := time.Now()
	c, held := l.m[k]
	if held && c.holder != holder && now.Before(c.expires) {
		return false, false
	}
	l.m[k] = localClaim{holder, now.Add(ttl)}
	return true, held && c.holder != holder
}

func (l *localClaims) release(uuid, handler, holder string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := [2]string{uuid, handler}
	if c, ok := l.m[k]; ok && c.holder == holder {
		delete(l.m, k)
	}
}

func (l *localClaims) prune(before time.Time) (n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, c := range l.m {
		if c.expires.Before(before) {
			delete(l.m, k)
			n++
		}
	}
	return n
}

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
	if s.dialect.name == DialectSQLite {
		won, taken = s.local.claim(messageUUID, handler, holder, ttl)
		return won, taken, nil
	}
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
	if s.dialect.name == DialectSQLite {
		s.local.release(messageUUID, handler, holder)
		return nil
	}
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
	if s.dialect.name == DialectSQLite {
		return s.local.prune(time.Now().Add(-olderThan)), nil
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

// RunKey names the run of a handler on a message, for CheckAndClaimMany.
type RunKey struct {
	MessageUUID, Handler, Holder string
}

// RunClaim is the outcome of CheckAndClaimMany for one RunKey.
type RunClaim struct {
	Status     Status
	Won, Taken bool
}

// CheckAndClaimMany looks up the consumed rows of many runs at once and, for each run
// whose row has not succeeded, claims it (ClaimRun), in two statements (the look-up of
// the rows and the insert of the claims) however many there are (up to 256; more take
// one look-up per 256); on PostgreSQL the two are one statement, and its
// eventbus_claims is UNLOGGED (a claim costs no WAL flush, and a database crash forgets
// the claims); on SQLite the claims are this process's (see ClaimRun). The idempotency
// check of concurrent deliveries costs one round trip each, as their rows' group
// commit does. Claims held by others are tried one by one (ClaimRun).
func (s *SQLStore) CheckAndClaimMany(ctx context.Context, keys []RunKey, ttl time.Duration) (out []RunClaim, err error) {
	out = make([]RunClaim, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	if s.dialect.name == DialectPostgres && len(keys) <= maxCheckKeys {
		return s.checkAndClaimPostgres(ctx, keys, ttl, out)
	}
	status := make(map[[2]string]Status, len(keys))
	for start := 0; start < len(keys); start += maxCheckKeys {
		if err := s.lookUpRuns(ctx, keys[start:min(start+maxCheckKeys, len(keys))], status); err != nil {
			return nil, err
		}
	}
	var claim, later []int
	seen := map[[2]string]bool{}
	for i, k := range keys {
		key := [2]string{k.MessageUUID, k.Handler}
		out[i].Status = status[key]
		if out[i].Status == StatusSucceeded {
			continue
		}
		if seen[key] || s.dialect.name == DialectSQLite {
			// A second delivery of one message in the batch (after the first's
			// claim), or SQLite's claims in this process: one by one.
			later = append(later, i)
			continue
		}
		seen[key] = true
		claim = append(claim, i)
	}
	defer func() {
		for _, i := range later {
			if err != nil {
				return
			}
			k := keys[i]
			out[i].Won, out[i].Taken, err = s.ClaimRun(ctx, k.MessageUUID, k.Handler, k.Holder, ttl)
		}
	}()
	if len(claim) == 0 {
		return out, nil
	}
	exp := time.Now().Add(ttl).UnixMicro()
	iargs := make([]any, 0, 4*len(claim))
	for _, i := range claim {
		iargs = append(iargs, keys[i].MessageUUID, keys[i].Handler, keys[i].Holder, exp)
	}
	values := `(?, ?, ?, ?)` + strings.Repeat(", (?, ?, ?, ?)", len(claim)-1)
	inserted := map[[2]string]bool{}
	if s.dialect.name == DialectMySQL {
		if _, err := s.db.ExecContext(ctx, `INSERT IGNORE INTO eventbus_claims (message_uuid, handler, holder, expires_at) VALUES `+values, iargs...); err != nil {
			return nil, fmt.Errorf("modelevent: claim %d runs: %w", len(claim), err)
		}
		hargs := make([]any, 0, len(claim))
		for _, i := range claim {
			hargs = append(hargs, keys[i].MessageUUID)
		}
		hrows, err := s.db.QueryContext(ctx, `SELECT message_uuid, handler, holder FROM eventbus_claims WHERE message_uuid IN (?`+
			strings.Repeat(", ?", len(claim)-1)+`)`, hargs...)
		if err != nil {
			return nil, fmt.Errorf("modelevent: claim %d runs: %w", len(claim), err)
		}
		holders := map[[2]string]string{}
		for hrows.Next() {
			var u, h, holder string
			if err := hrows.Scan(&u, &h, &holder); err != nil {
				hrows.Close()
				return nil, fmt.Errorf("modelevent: claim %d runs: %w", len(claim), err)
			}
			holders[[2]string{u, h}] = holder
		}
		hrows.Close()
		for _, i := range claim {
			k := keys[i]
			inserted[[2]string{k.MessageUUID, k.Handler}] = holders[[2]string{k.MessageUUID, k.Handler}] == k.Holder
		}
	} else {
		irows, err := s.db.QueryContext(ctx, s.dialect.rebind(`INSERT INTO eventbus_claims (message_uuid, handler, holder, expires_at) VALUES `+values+
			` ON CONFLICT (message_uuid, handler) DO NOTHING RETURNING message_uuid, handler`), iargs...)
		if err != nil {
			return nil, fmt.Errorf("modelevent: claim %d runs: %w", len(claim), err)
		}
		for irows.Next() {
			var u, h string
			if err := irows.Scan(&u, &h); err != nil {
				irows.Close()
				return nil, fmt.Errorf("modelevent: claim %d runs: %w", len(claim), err)
			}
			inserted[[2]string{u, h}] = true
		}
		irows.Close()
		if err := irows.Err(); err != nil {
			return nil, fmt.Errorf("modelevent: claim %d runs: %w", len(claim), err)
		}
	}
	for _, i := range claim {
		k := keys[i]
		if inserted[[2]string{k.MessageUUID, k.Handler}] {
			out[i].Won = true
			continue
		}
		won, taken, err := s.ClaimRun(ctx, k.MessageUUID, k.Handler, k.Holder, ttl)
		if err != nil {
			return nil, err
		}
		out[i].Won, out[i].Taken = won, taken
	}
	return out, nil
}

// lookUpRuns puts the status of every consumed row of keys' message UUIDs in status.
// message_uuid IN (…) is a range of the natural key's index on every database; a
// row-value IN ((uuid, handler), …) is not, on SQLite (it scans the table). The list
// is padded to a power of two with repeats of the first UUID, so that a few
// statements (prepared on SQLite) serve every batch size.
func (s *SQLStore) lookUpRuns(ctx context.Context, keys []RunKey, status map[[2]string]Status) error {
	bucket := checkBucket(len(keys))
	args := make([]any, 0, 1<<bucket)
	for _, k := range keys {
		args = append(args, k.MessageUUID)
	}
	for len(args) < 1<<bucket {
		args = append(args, keys[0].MessageUUID)
	}
	var rows *sql.Rows
	var err error
	if st := s.checkStmt(ctx, bucket); st != nil {
		rows, err = st.QueryContext(ctx, args...)
	} else {
		rows, err = s.db.QueryContext(ctx, s.checkSQL(bucket), args...)
	}
	if err != nil {
		return fmt.Errorf("modelevent: check %d runs: %w", len(keys), err)
	}
	defer rows.Close()
	for rows.Next() {
		var u, h, st string
		if err := rows.Scan(&u, &h, &st); err != nil {
			return fmt.Errorf("modelevent: check %d runs: %w", len(keys), err)
		}
		status[[2]string{u, h}] = Status(st)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("modelevent: check %d runs: %w", len(keys), err)
	}
	return nil
}

// checkAndClaimPostgres is CheckAndClaimMany on PostgreSQL in one round trip: one
// statement inserts the claims of the batch's first delivery of each message and reads
// the rows' status (as of before the insert). A message whose row already succeeded
// gets a claim it does not use, which lapses (a duplicate delivery, rare). Claims held
// by others, and a batch's later deliveries of one message, are tried one by one
// (ClaimRun).
func (s *SQLStore) checkAndClaimPostgres(ctx context.Context, keys []RunKey, ttl time.Duration, out []RunClaim) ([]RunClaim, error) {
	exp := time.Now().Add(ttl).UnixMicro()
	var first, later []int
	seen := make(map[[2]string]bool, len(keys))
	args := make([]any, 0, 4*len(keys))
	var values, in strings.Builder
	for i, k := range keys {
		key := [2]string{k.MessageUUID, k.Handler}
		if seen[key] {
			later = append(later, i)
			continue
		}
		seen[key] = true
		first = append(first, i)
		n := len(args)
		if n > 0 {
			values.WriteString(", ")
			in.WriteString(", ")
		}
		fmt.Fprintf(&values, "($%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4)
		fmt.Fprintf(&in, "$%d", n+1)
		args = append(args, k.MessageUUID, k.Handler, k.Holder, exp)
	}
	rows, err := s.db.QueryContext(ctx, `WITH c AS (INSERT INTO eventbus_claims (message_uuid, handler, holder, expires_at) VALUES `+values.String()+
		` ON CONFLICT (message_uuid, handler) DO NOTHING RETURNING message_uuid, handler)`+
		` SELECT message_uuid, handler, status, false FROM eventbus_events WHERE message_uuid IN (`+in.String()+`)`+
		` UNION ALL SELECT message_uuid, handler, '', true FROM c`, args...)
	if err != nil {
		return nil, fmt.Errorf("modelevent: check and claim %d runs: %w", len(keys), err)
	}
	status := make(map[[2]string]Status, len(keys))
	inserted := make(map[[2]string]bool, len(first))
	for rows.Next() {
		var u, h, st string
		var claim bool
		if err := rows.Scan(&u, &h, &st, &claim); err != nil {
			rows.Close()
			return nil, fmt.Errorf("modelevent: check and claim %d runs: %w", len(keys), err)
		}
		if claim {
			inserted[[2]string{u, h}] = true
		} else {
			status[[2]string{u, h}] = Status(st)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("modelevent: check and claim %d runs: %w", len(keys), err)
	}
	for _, i := range append(first, later...) {
		k := keys[i]
		key := [2]string{k.MessageUUID, k.Handler}
		out[i].Status = status[key]
		if out[i].Status == StatusSucceeded {
			continue
		}
		if inserted[key] {
			out[i].Won = true
			delete(inserted, key) // the batch's later deliveries of it find it held
			continue
		}
		won, taken, err := s.ClaimRun(ctx, k.MessageUUID, k.Handler, k.Holder, ttl)
		if err != nil {
			return nil, err
		}
		out[i].Won, out[i].Taken = won, taken
	}
	return out, nil
}
