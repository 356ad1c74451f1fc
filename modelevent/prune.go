package modelevent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PruneOptions says what Prune deletes. The zero value deletes nothing.
type PruneOptions struct {
	// MaxAge is how long rows of each status are kept: a row whose id (minted when the
	// row was first recorded) is older than MaxAge[status] is deleted with its attempts.
	// Statuses absent (or zero) are kept.
	MaxAge map[Status]time.Duration
	// MaxRows keeps at most this many rows: beyond the newest MaxRows, the older rows
	// are deleted whatever their age, except pending, retrying and scheduled rows (work in
	// progress: a scheduled retry waits in its row). 0: no limit. Finding the cut reads
	// MaxRows entries of the primary key.
	MaxRows int64
	// CommandMaxAge deletes the control plane's finished commands (succeeded, failed,
	// expired) created and finished longer ago. 0 keeps them.
	CommandMaxAge time.Duration
	// BatchSize is the number of rows deleted per transaction. Default 500.
	BatchSize int
	// Pause is the wait between two batches, which lets recording in. 0 means a
	// multiple of the last batch's duration (its wait for the writer included): four
	// times on SQLite, so the pruner holds the only writer at most about a fifth of the
	// time, and less the busier the store is; ten times on PostgreSQL and MySQL, where
	// the deletes also cost the server work after their transaction (autovacuum,
	// purge). Negative means none.
	Pause time.Duration
	// DryRun counts what would be deleted, deleting nothing.
	DryRun bool
	// Now is the time ages are measured from; zero means time.Now().
	Now time.Time
}

// PruneResult says what a Prune deleted (or, with DryRun, would delete).
type PruneResult struct {
	// Events is the number of ModelEvent rows, ByStatus the same by status.
	Events   int64            `json:"events"`
	ByStatus map[Status]int64 `json:"by_status"`
	// Attempts is the number of attempt rows deleted with their events.
	Attempts int64 `json:"attempts"`
	// Commands is the number of finished commands.
	Commands int64 `json:"commands"`
	// Batches is the number of transactions (or, with DryRun, of batches counted).
	Batches int `json:"batches"`
	// FreedPages is the number of pages a SQLite database gave back to the operating
	// system after the prune (incremental vacuum; see Prune).
	FreedPages int64 `json:"freed_pages,omitempty"`
	// DryRun is set when nothing was deleted.
	DryRun bool `json:"dry_run"`
	// Duration is how long the prune took.
	Duration time.Duration `json:"duration"`
}

// DefaultPruneBatch is the batch of Prune when PruneOptions.BatchSize is 0.
const DefaultPruneBatch = 500

// Prune deletes old ModelEvents, with their attempt history, and old finished
// commands, as opts says. It walks the rows oldest first along the primary key (ids are
// time-ordered ULIDs, so "older than" is a key range) and deletes them BatchSize at a
// time, one short transaction per batch with a pause between (see PruneOptions.Pause),
// so writers are never blocked for longer than one batch. A row whose status changed
// between the look-up and its batch's delete (a retry) is kept, with its attempts. It
// is safe to run while the store records, and from several processes (they share the
// work and count a row at most once between them); the bus runs it in one process at a
// time (RetentionLease). Prune returns what it deleted so far with an error, or with
// ctx's error when ctx ends.
//
// On SQLite, freed pages are reused by new rows, so under steady load the file stops
// growing; a database created with auto_vacuum=INCREMENTAL (a DSN with
// _pragma=auto_vacuum(INCREMENTAL) on a new file; Open does not set it, as it slows
// recording) also gives back to the operating system the free pages beyond a quarter of
// the pages in use, a chunk at a time, after a prune that deleted rows.
func (s *SQLStore) Prune(ctx context.Context, opts PruneOptions) (PruneResult, error) {
	start := time.Now()
	res := PruneResult{ByStatus: map[Status]int64{}, DryRun: opts.DryRun}
	now := opts.Now
	if now.IsZero() {
		now = start
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultPruneBatch
	}
	// One walk per distinct age: statuses kept equally long are deleted together.
	byAge := map[time.Duration][]Status{}
	for st, age := range opts.MaxAge {
		if !st.Valid() {
			return res, fmt.Errorf("modelevent: prune: unknown status %q", st)
		}
		if age > 0 {
			byAge[age] = append(byAge[age], st)
		}
	}
	ages := make([]time.Duration, 0, len(byAge))
	for age := range byAge {
		ages = append(ages, age)
	}
	sort.Slice(ages, func(i, j int) bool { return ages[i] < ages[j] })
	err := func() error {
		for _, age := range ages {
			sts := byAge[age]
			sort.Slice(sts, func(i, j int) bool { return sts[i] < sts[j] })
			if err := s.pruneEvents(ctx, sts, idFloor(now.Add(-age)), opts, &res); err != nil {
				return err
			}
		}
		if opts.MaxRows > 0 {
			cut, err := s.rowCapCut(ctx, opts.MaxRows)
			if err != nil {
				return err
			}
			if cut != "" {
				var sts []Status
				for _, st := range Statuses {
					if st != StatusPending && st != StatusRetrying && st != StatusScheduled {
						sts = append(sts, st)
					}
				}
				if err := s.pruneEvents(ctx, sts, cut, opts, &res); err != nil {
					return err
				}
			}
		}
		if opts.CommandMaxAge > 0 {
			if err := s.pruneCommands(ctx, now.Add(-opts.CommandMaxAge), opts, &res); err != nil {
				return err
			}
		}
		return nil
	}()
	if err == nil && !opts.DryRun && res.Events > 0 && s.dialect.name == DialectSQLite {
		res.FreedPages, err = s.incrementalVacuum(ctx, opts)
	}
	res.Duration = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("modelevent: prune: %w", err)
	}
	return res, nil
}

// prunedRow is one row of a batch.
type prunedRow struct {
	id     string
	key    eventKey
	status Status
}

// pruneEvents deletes the rows of statuses whose id is below before, batch by batch.
func (s *SQLStore) pruneEvents(ctx context.Context, statuses []Status, before string, opts PruneOptions, res *PruneResult) error {
	ph := make([]string, len(statuses))
	stArgs := make([]any, len(statuses))
	rare := true
	for i, st := range statuses {
		ph[i], stArgs[i] = "?", string(st)
		rare = rare && st != StatusSucceeded && st != StatusPublished
	}
	statusCond := "status IN (" + strings.Join(ph, ", ") + ")"
	if rare {
		// The status index is partial: state its condition so the walk can use it.
		statusCond += " AND status NOT IN ('succeeded', 'published')"
	}
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		q := `SELECT id, message_uuid, direction, handler, status FROM eventbus_events WHERE id < ?`
		args := []any{before}
		if after != "" {
			q += ` AND id > ?`
			args = append(args, after)
		}
		q += ` AND ` + statusCond + ` ORDER BY id LIMIT ` + strconv.Itoa(opts.BatchSize)
		batch, err := s.selectPruneBatch(ctx, q, append(args, stArgs...))
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		after = batch[len(batch)-1].id
		var held time.Duration
		if opts.DryRun {
			n, err := s.countAttempts(ctx, batch)
			if err != nil {
				return err
			}
			res.Attempts += n
			for _, r := range batch {
				res.Events++
				res.ByStatus[r.status]++
			}
		} else if held, err = s.deleteBatch(ctx, batch, statusCond, stArgs, res); err != nil {
			return err
		}
		res.Batches++
		if len(batch) < opts.BatchSize {
			return nil
		}
		if !opts.DryRun {
			if err := pause(ctx, opts.Pause, s.pauseFactor()*held); err != nil {
				return err
			}
		}
	}
}

func (s *SQLStore) selectPruneBatch(ctx context.Context, q string, args []any) ([]prunedRow, error) {
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("select rows: %w", err)
	}
	defer rows.Close()
	var out []prunedRow
	for rows.Next() {
		var r prunedRow
		var dir, st string
		if err := rows.Scan(&r.id, &r.key.uuid, &dir, &r.key.handler, &st); err != nil {
			return nil, fmt.Errorf("select rows: %w", err)
		}
		r.key.direction, r.status = Direction(dir), Status(st)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select rows: %w", err)
	}
	return out, nil
}

// idList returns "?, ?, …" for the ids of batch and the ids.
func idList(batch []prunedRow) (string, []any) {
	ph := make([]string, len(batch))
	args := make([]any, len(batch))
	for i, r := range batch {
		ph[i], args[i] = "?", r.id
	}
	return strings.Join(ph, ", "), args
}

// keyList returns the condition selecting the attempts of batch and its arguments.
func keyList(batch []prunedRow) (string, []any) {
	ph := make([]string, len(batch))
	args := make([]any, 0, 3*len(batch))
	for i, r := range batch {
		ph[i] = "(?, ?, ?)"
		args = append(args, r.key.uuid, string(r.key.direction), r.key.handler)
	}
	return "(message_uuid, direction, handler) IN (" + strings.Join(ph, ", ") + ")", args
}

func (s *SQLStore) countAttempts(ctx context.Context, batch []prunedRow) (int64, error) {
	cond, args := keyList(batch)
	var n int64
	if err := s.db.QueryRowContext(ctx, s.dialect.rebind(`SELECT COUNT(*) FROM eventbus_attempts WHERE `+cond), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count attempts: %w", err)
	}
	return n, nil
}

// deleteBatch deletes the rows of batch that still have one of the statuses, and their
// attempts, in one transaction, and returns how long that took, including the wait
// for the writer (SQLite's BEGIN IMMEDIATE waits for the lock): the busier the store,
// the longer the pause after the batch.
func (s *SQLStore) deleteBatch(ctx context.Context, batch []prunedRow, statusCond string, stArgs []any, res *PruneResult) (time.Duration, error) {
	began := time.Now()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	ids, idArgs := idList(batch)
	r, err := tx.ExecContext(ctx, s.dialect.rebind(`DELETE FROM eventbus_events WHERE id IN (`+ids+`) AND `+statusCond),
		append(append([]any{}, idArgs...), stArgs...)...)
	if err != nil {
		return 0, fmt.Errorf("delete %d events: %w", len(batch), err)
	}
	n, _ := r.RowsAffected()
	gone := batch
	if int(n) < len(batch) {
		// Some rows changed status (or were deleted by another pruner): keep the
		// attempts of those that are still there.
		kept, err := s.stillThere(ctx, tx, ids, idArgs)
		if err != nil {
			return 0, err
		}
		gone = make([]prunedRow, 0, len(batch))
		for _, row := range batch {
			if !kept[row.id] {
				gone = append(gone, row)
			}
		}
	}
	var attempts int64
	if len(gone) > 0 {
		cond, args := keyList(gone)
		r, err := tx.ExecContext(ctx, s.dialect.rebind(`DELETE FROM eventbus_attempts WHERE `+cond), args...)
		if err != nil {
			return 0, fmt.Errorf("delete attempts of %d events: %w", len(gone), err)
		}
		attempts, _ = r.RowsAffected()
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	// Rows another pruner deleted first are counted by it; n counts ours.
	if int(n) == len(gone) {
		for _, row := range gone {
			res.ByStatus[row.status]++
		}
	}
	res.Events += n
	res.Attempts += attempts
	return time.Since(began), nil
}

func (s *SQLStore) stillThere(ctx context.Context, tx *sql.Tx, ids string, idArgs []any) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, s.dialect.rebind(`SELECT id FROM eventbus_events WHERE id IN (`+ids+`)`), idArgs...)
	if err != nil {
		return nil, fmt.Errorf("select kept rows: %w", err)
	}
	defer rows.Close()
	kept := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("select kept rows: %w", err)
		}
		kept[id] = true
	}
	return kept, rows.Err()
}

// rowCapCut returns the id of the maxRows-th newest row (rows below it are beyond the
// cap), or "" when there are no more than maxRows rows.
func (s *SQLStore) rowCapCut(ctx context.Context, maxRows int64) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM eventbus_events ORDER BY id DESC LIMIT 1 OFFSET `+strconv.FormatInt(maxRows-1, 10)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("find the row cap: %w", err)
	}
	return id, nil
}

// pruneCommands deletes finished commands created and finished before cut.
func (s *SQLStore) pruneCommands(ctx context.Context, cut time.Time, opts PruneOptions, res *PruneResult) error {
	const cond = `status IN ('succeeded', 'failed', 'expired') AND id < ? AND finished_at < ?`
	args := []any{idFloor(cut), cut.UnixMicro()}
	if opts.DryRun {
		var n int64
		if err := s.db.QueryRowContext(ctx, s.dialect.rebind(`SELECT COUNT(*) FROM eventbus_commands WHERE `+cond), args...).Scan(&n); err != nil {
			return fmt.Errorf("count commands: %w", err)
		}
		res.Commands += n
		return nil
	}
	for {
		rows, err := s.db.QueryContext(ctx, s.dialect.rebind(`SELECT id FROM eventbus_commands WHERE `+cond+` ORDER BY id LIMIT `+strconv.Itoa(opts.BatchSize)), args...)
		if err != nil {
			return fmt.Errorf("select commands: %w", err)
		}
		var ids []any
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("select commands: %w", err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("select commands: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		began := time.Now()
		ph := strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")
		r, err := s.db.ExecContext(ctx, s.dialect.rebind(`DELETE FROM eventbus_commands WHERE id IN (`+ph+`)`), ids...)
		if err != nil {
			return fmt.Errorf("delete %d commands: %w", len(ids), err)
		}
		n, _ := r.RowsAffected()
		res.Commands += n
		res.Batches++
		if len(ids) < opts.BatchSize {
			return nil
		}
		if err := pause(ctx, opts.Pause, s.pauseFactor()*time.Since(began)); err != nil {
			return err
		}
	}
}

// pauseFactor is how many times its own duration the pruner waits after a batch
// (PruneOptions.Pause 0); measured in BenchmarkPruneWhileRecording.
func (s *SQLStore) pauseFactor() time.Duration {
	if s.dialect.name == DialectSQLite {
		return 4
	}
	return 10
}

// pause waits between two batches: p, or with p zero def.
func pause(ctx context.Context, p, def time.Duration) error {
	if p < 0 {
		return ctx.Err()
	}
	if p == 0 {
		p = def
	}
	t := time.NewTimer(p)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Incremental vacuum on SQLite: free pages beyond a quarter of the pages in use go
// back to the operating system, vacuumChunk pages per statement.
const vacuumChunk = 2048

// incrementalVacuum returns to the operating system the free pages of a SQLite
// database in auto_vacuum=INCREMENTAL mode beyond a quarter of the pages in use (those
// stay for the rows recorded next), and returns how many it gave back. A database not
// in that mode is left alone: its free pages are reused by new rows.
func (s *SQLStore) incrementalVacuum(ctx context.Context, opts PruneOptions) (int64, error) {
	var mode int
	if err := s.db.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&mode); err != nil {
		return 0, fmt.Errorf("read auto_vacuum: %w", err)
	}
	if mode != 2 {
		return 0, nil
	}
	var freed int64
	for {
		var free, total int64
		if err := s.db.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&free); err != nil {
			return freed, fmt.Errorf("read freelist_count: %w", err)
		}
		if err := s.db.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&total); err != nil {
			return freed, fmt.Errorf("read page_count: %w", err)
		}
		excess := free - (total-free)/4
		if excess <= 0 {
			return freed, nil
		}
		n := min(excess, vacuumChunk)
		began := time.Now()
		if _, err := s.db.ExecContext(ctx, `PRAGMA incremental_vacuum(`+strconv.FormatInt(n, 10)+`)`); err != nil {
			return freed, fmt.Errorf("incremental vacuum: %w", err)
		}
		freed += n
		if err := pause(ctx, opts.Pause, s.pauseFactor()*time.Since(began)); err != nil {
			return freed, err
		}
	}
}

// Oldest returns the id and creation time of the oldest ModelEvent row (the first
// entry of the primary key), or "" and the zero time for an empty store.
func (s *SQLStore) Oldest(ctx context.Context) (string, time.Time, error) {
	var id string
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT id, created_at FROM eventbus_events ORDER BY id LIMIT 1`).Scan(&id, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("modelevent: oldest event: %w", err)
	}
	return id, time.UnixMicro(created).UTC(), nil
}
