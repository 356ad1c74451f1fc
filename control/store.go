package control

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/go-eventbus/eventbus/modelevent"
)

// Store keeps the control plane in the ModelEvent store's database: the process
// registry, the consumers' desired state and the command queue. Its tables come with
// the store's migrations. It is safe for concurrent use by many processes: claiming a
// command is one conditional UPDATE, so exactly one process wins it.
type Store struct {
	db      *sql.DB
	dialect string
	now     func() time.Time
}

// NewStore returns the control plane kept in s's database (a *modelevent.SQLStore, or
// any store that forwards its DB and Dialect).
func NewStore(s modelevent.SQLDatabase) *Store {
	return &Store{db: s.DB(), dialect: s.Dialect(), now: time.Now}
}

// q rewrites ? placeholders as $n for PostgreSQL.
func (s *Store) q(query string) string {
	if s.dialect != modelevent.DialectPostgres {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// Heartbeat registers p or refreshes its row: last seen now, its consumers as given.
func (s *Store) Heartbeat(ctx context.Context, p Process) error {
	consumers, err := json.Marshal(p.Consumers)
	if err != nil {
		return fmt.Errorf("control: heartbeat %s: %w", p.ID, err)
	}
	now := micros(s.now())
	args := []any{p.ID, p.Name, p.Host, p.PID, p.Version, p.Backend, micros(p.Started), now, int64(p.HeartbeatInterval / time.Microsecond), string(consumers)}
	var query string
	switch s.dialect {
	case modelevent.DialectMySQL:
		query = `INSERT INTO eventbus_processes (id, name, host, pid, version, backend, started_at, heartbeat_at, heartbeat_interval, consumers)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE heartbeat_at = VALUES(heartbeat_at), heartbeat_interval = VALUES(heartbeat_interval), consumers = VALUES(consumers)`
	default:
		query = `INSERT INTO eventbus_processes (id, name, host, pid, version, backend, started_at, heartbeat_at, heartbeat_interval, consumers)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, heartbeat_interval = excluded.heartbeat_interval, consumers = excluded.consumers`
	}
	if _, err := s.db.ExecContext(ctx, s.q(query), args...); err != nil {
		return fmt.Errorf("control: heartbeat %s: %w", p.ID, err)
	}
	return nil
}

// Deregister removes a process from the registry (a clean shutdown).
func (s *Store) Deregister(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM eventbus_processes WHERE id = ?`), id); err != nil {
		return fmt.Errorf("control: deregister %s: %w", id, err)
	}
	return nil
}

// Prune removes processes not seen for olderThan.
func (s *Store) Prune(ctx context.Context, olderThan time.Duration) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM eventbus_processes WHERE heartbeat_at < ?`), micros(s.now().Add(-olderThan)))
	if err != nil {
		return 0, fmt.Errorf("control: prune processes: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Processes lists the registered processes, oldest first, with Gone set.
func (s *Store) Processes(ctx context.Context) ([]Process, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, host, pid, version, backend, started_at, heartbeat_at, heartbeat_interval, consumers FROM eventbus_processes ORDER BY started_at, id`)
	if err != nil {
		return nil, fmt.Errorf("control: list processes: %w", err)
	}
	defer rows.Close()
	now := s.now()
	var out []Process
	for rows.Next() {
		var p Process
		var started, seen, interval int64
		var consumers string
		if err := rows.Scan(&p.ID, &p.Name, &p.Host, &p.PID, &p.Version, &p.Backend, &started, &seen, &interval, &consumers); err != nil {
			return nil, fmt.Errorf("control: list processes: %w", err)
		}
		p.Started, p.LastSeen = fromMicros(started), fromMicros(seen)
		p.HeartbeatInterval = time.Duration(interval) * time.Microsecond
		p.Gone = now.Sub(p.LastSeen) > GoneAfter*p.HeartbeatInterval
		if err := json.Unmarshal([]byte(consumers), &p.Consumers); err != nil {
			return nil, fmt.Errorf("control: process %s: consumers: %w", p.ID, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Process returns one process, or an error wrapping modelevent.ErrNotFound.
func (s *Store) Process(ctx context.Context, id string) (Process, error) {
	ps, err := s.Processes(ctx)
	if err != nil {
		return Process{}, err
	}
	for _, p := range ps {
		if p.ID == id {
			return p, nil
		}
	}
	return Process{}, fmt.Errorf("%w: process %q", modelevent.ErrNotFound, id)
}

// SetDesired sets the desired state of consumer in one process, or, with processID "",
// in every process (which clears per-process settings of that consumer).
func (s *Store) SetDesired(ctx context.Context, consumer, processID string, state State) error {
	if !state.Valid() {
		return fmt.Errorf("control: state %q is not a state (accepted: running, stopped)", state)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("control: set %s %s: %w", consumer, state, err)
	}
	defer func() { _ = tx.Rollback() }()
	if processID == "" {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM eventbus_consumer_states WHERE consumer = ? AND process_id <> ''`), consumer); err != nil {
			return fmt.Errorf("control: set %s %s: %w", consumer, state, err)
		}
	}
	var query string
	switch s.dialect {
	case modelevent.DialectMySQL:
		query = `INSERT INTO eventbus_consumer_states (consumer, process_id, state, updated_at) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE state = VALUES(state), updated_at = VALUES(updated_at)`
	default:
		query = `INSERT INTO eventbus_consumer_states (consumer, process_id, state, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (consumer, process_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`
	}
	if _, err := tx.ExecContext(ctx, s.q(query), consumer, processID, string(state), micros(s.now())); err != nil {
		return fmt.Errorf("control: set %s %s: %w", consumer, state, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("control: set %s %s: %w", consumer, state, err)
	}
	return nil
}

// Desired returns the desired state of every consumer that has one for process
// processID: its own setting, else the setting for every process. Consumers without a
// setting are absent (they run).
func (s *Store) Desired(ctx context.Context, processID string) (map[string]State, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT consumer, process_id, state FROM eventbus_consumer_states WHERE process_id = '' OR process_id = ?`), processID)
	if err != nil {
		return nil, fmt.Errorf("control: desired states: %w", err)
	}
	defer rows.Close()
	out := map[string]State{}
	own := map[string]bool{}
	for rows.Next() {
		var consumer, pid, state string
		if err := rows.Scan(&consumer, &pid, &state); err != nil {
			return nil, fmt.Errorf("control: desired states: %w", err)
		}
		if pid != "" {
			out[consumer], own[consumer] = State(state), true
		} else if !own[consumer] {
			out[consumer] = State(state)
		}
	}
	return out, rows.Err()
}

// Enqueue adds a pending command that expires after ttl and returns it with its id.
func (s *Store) Enqueue(ctx context.Context, c Command, ttl time.Duration) (Command, error) {
	if !c.Kind.Valid() {
		return Command{}, fmt.Errorf("control: command kind %q is not a kind (accepted: retry, replay, redrive)", c.Kind)
	}
	now := s.now()
	c.ID = ulid.Make().String()
	c.Status = CommandPending
	c.CreatedAt = now.UTC()
	c.ExpiresAt = now.Add(ttl).UTC()
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO eventbus_commands (id, kind, event_id, consumer, process_id, status, claimed_by, result, error, created_at, claimed_at, finished_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?, '', '', '', ?, 0, 0, ?)`), c.ID, string(c.Kind), c.EventID, c.Consumer, c.ProcessID, string(c.Status), micros(c.CreatedAt), micros(c.ExpiresAt))
	if err != nil {
		return Command{}, fmt.Errorf("control: enqueue %s %s: %w", c.Kind, c.EventID, err)
	}
	return c, nil
}

const commandColumns = `id, kind, event_id, consumer, process_id, status, claimed_by, result, error, created_at, claimed_at, finished_at, expires_at`

func scanCommand(sc interface{ Scan(...any) error }) (Command, error) {
	var c Command
	var kind, status string
	var created, claimed, finished, expires int64
	if err := sc.Scan(&c.ID, &kind, &c.EventID, &c.Consumer, &c.ProcessID, &status, &c.ClaimedBy, &c.Result, &c.Error, &created, &claimed, &finished, &expires); err != nil {
		return Command{}, err
	}
	c.Kind, c.Status = CommandKind(kind), CommandStatus(status)
	c.CreatedAt, c.ClaimedAt, c.FinishedAt, c.ExpiresAt = fromMicros(created), fromMicros(claimed), fromMicros(finished), fromMicros(expires)
	return c, nil
}

// Command returns one command, or an error wrapping modelevent.ErrNotFound.
func (s *Store) Command(ctx context.Context, id string) (Command, error) {
	c, err := scanCommand(s.db.QueryRowContext(ctx, s.q(`SELECT `+commandColumns+` FROM eventbus_commands WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Command{}, fmt.Errorf("%w: command %q", modelevent.ErrNotFound, id)
	}
	if err != nil {
		return Command{}, fmt.Errorf("control: command %s: %w", id, err)
	}
	return c, nil
}

// Commands lists the newest commands first, at most limit (default 100), optionally
// only those in status.
func (s *Store) Commands(ctx context.Context, status CommandStatus, limit int) ([]Command, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	query := `SELECT ` + commandColumns + ` FROM eventbus_commands`
	var args []any
	if status != "" {
		query += ` WHERE status = ?`
		args = append(args, string(status))
	}
	query += ` ORDER BY id DESC LIMIT ` + strconv.Itoa(limit)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("control: list commands: %w", err)
	}
	defer rows.Close()
	var out []Command
	for rows.Next() {
		c, err := scanCommand(rows)
		if err != nil {
			return nil, fmt.Errorf("control: list commands: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Claim claims up to limit pending, unexpired commands that process processID can run:
// retries of the consumers it runs, and replays and redrives, addressed to it or to any
// process. Each command is claimed by exactly one process (a conditional UPDATE).
func (s *Store) Claim(ctx context.Context, processID string, consumers []string, limit int) ([]Command, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+commandColumns+` FROM eventbus_commands
WHERE status = 'pending' AND expires_at > ? AND (process_id = '' OR process_id = ?) ORDER BY id LIMIT `+strconv.Itoa(limit*4+16)),
		micros(s.now()), processID)
	if err != nil {
		return nil, fmt.Errorf("control: claim commands: %w", err)
	}
	var candidates []Command
	for rows.Next() {
		c, err := scanCommand(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("control: claim commands: %w", err)
		}
		candidates = append(candidates, c)
	}
	rows.Close()
	mine := map[string]bool{}
	for _, c := range consumers {
		mine[c] = true
	}
	var out []Command
	for _, c := range candidates {
		if len(out) >= limit {
			break
		}
		if (c.Kind == Retry || c.Kind == Redrive) && !mine[c.Consumer] {
			continue
		}
		now := s.now()
		res, err := s.db.ExecContext(ctx, s.q(`UPDATE eventbus_commands SET status = 'claimed', claimed_by = ?, claimed_at = ? WHERE id = ? AND status = 'pending'`),
			processID, micros(now), c.ID)
		if err != nil {
			return out, fmt.Errorf("control: claim %s: %w", c.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			c.Status, c.ClaimedBy, c.ClaimedAt = CommandClaimed, processID, now.UTC()
			out = append(out, c)
		}
	}
	return out, nil
}

// Finish records the outcome of a claimed command.
func (s *Store) Finish(ctx context.Context, id, result string, cmdErr error) error {
	status, errText := CommandSucceeded, ""
	if cmdErr != nil {
		status, errText = CommandFailed, cmdErr.Error()
	}
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE eventbus_commands SET status = ?, result = ?, error = ?, finished_at = ? WHERE id = ? AND status = 'claimed'`),
		string(status), result, errText, micros(s.now()), id)
	if err != nil {
		return fmt.Errorf("control: finish %s: %w", id, err)
	}
	return nil
}

// Expire marks pending commands past their expiry as expired, with the reason.
func (s *Store) Expire(ctx context.Context) (int64, error) {
	now := micros(s.now())
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, kind, consumer FROM eventbus_commands WHERE status = 'pending' AND expires_at <= ? ORDER BY id LIMIT 1000`), now)
	if err != nil {
		return 0, fmt.Errorf("control: expire commands: %w", err)
	}
	type expired struct{ id, kind, consumer string }
	var list []expired
	for rows.Next() {
		var e expired
		if err := rows.Scan(&e.id, &e.kind, &e.consumer); err != nil {
			rows.Close()
			return 0, fmt.Errorf("control: expire commands: %w", err)
		}
		list = append(list, e)
	}
	rows.Close()
	var n int64
	for _, e := range list {
		reason := "expired: no live bus process claimed it in time"
		if CommandKind(e.kind) == Retry || CommandKind(e.kind) == Redrive {
			reason = fmt.Sprintf("expired: no live process running consumer %q claimed it in time", e.consumer)
		}
		res, err := s.db.ExecContext(ctx, s.q(`UPDATE eventbus_commands SET status = 'expired', error = ?, finished_at = ? WHERE id = ? AND status = 'pending'`), reason, now, e.id)
		if err != nil {
			return n, fmt.Errorf("control: expire %s: %w", e.id, err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	return n, nil
}
