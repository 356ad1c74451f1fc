package modelevent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// TimelinePoint counts the rows of one topic, direction and status created in one time
// bucket.
type TimelinePoint struct {
	// Start is the start of the bucket (UTC), a multiple of the bucket size since the
	// Unix epoch.
	Start     time.Time `json:"start"`
	Topic     string    `json:"topic"`
	Direction Direction `json:"direction"`
	Status    Status    `json:"status"`
	Count     int64     `json:"count"`
}

// HandlerLatency sums the attempts of one handler (empty: publishing).
type HandlerLatency struct {
	Handler  string `json:"handler"`
	Attempts int64  `json:"attempts"`
	// Errors counts the attempts that ended in an error.
	Errors int64         `json:"errors"`
	Avg    time.Duration `json:"avg"`
	Max    time.Duration `json:"max"`
}

// Limits of the insight queries.
const (
	// MaxTimelineBuckets bounds how many buckets one Timeline call spans.
	MaxTimelineBuckets = 2000
	// LatencyWindow is how many of the most recent rows and attempts SlowestHandlers reads.
	LatencyWindow = 100000
)

// Timeline counts the rows matching f by bucket of CreatedAt, topic, direction and
// status, oldest bucket first. f.Since must be set; a zero f.Until means now. The span
// may hold at most MaxTimelineBuckets buckets; buckets without rows are absent.
func (s *SQLStore) Timeline(ctx context.Context, f Filter, bucket time.Duration) ([]TimelinePoint, error) {
	if bucket < time.Second {
		return nil, fmt.Errorf("modelevent: timeline: bucket %v is under 1s", bucket)
	}
	if f.Since.IsZero() {
		return nil, errors.New("modelevent: timeline: the filter needs Since")
	}
	until := f.Until
	if until.IsZero() {
		until = time.Now()
	}
	if n := until.Sub(f.Since) / bucket; n > MaxTimelineBuckets {
		return nil, fmt.Errorf("modelevent: timeline: %v in buckets of %v is %d buckets, over %d", until.Sub(f.Since), bucket, n, MaxTimelineBuckets)
	}
	where, args, err := s.where(f)
	if err != nil {
		return nil, fmt.Errorf("modelevent: timeline: %w", err)
	}
	us := strconv.FormatInt(bucket.Microseconds(), 10)
	q := s.dialect.rebind(`SELECT created_at - created_at % ` + us + `, topic, direction, status, COUNT(*) FROM eventbus_events` +
		where + ` GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("modelevent: timeline: %w", err)
	}
	defer rows.Close()
	var out []TimelinePoint
	for rows.Next() {
		var p TimelinePoint
		var start int64
		var dir, status string
		if err := rows.Scan(&start, &p.Topic, &dir, &status, &p.Count); err != nil {
			return nil, fmt.Errorf("modelevent: timeline: %w", err)
		}
		p.Start, p.Direction, p.Status = time.UnixMicro(start).UTC(), Direction(dir), Status(status)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("modelevent: timeline: %w", err)
	}
	return out, nil
}

// SlowestHandlers returns up to limit handlers (default 10) by average attempt
// duration, slowest first, over the attempts started since since: those of deliveries
// that succeeded at once (kept in their row; the most recent LatencyWindow rows) and
// those in the attempt history (the most recent LatencyWindow attempts), which bounds
// the cost on a large table.
func (s *SQLStore) SlowestHandlers(ctx context.Context, since time.Time, limit int) ([]HandlerLatency, error) {
	if limit <= 0 || limit > 100 {
		limit = 10
	}
	window := strconv.Itoa(LatencyWindow)
	q := s.dialect.rebind(`SELECT handler, COUNT(*), SUM(failed), SUM(dur), MAX(dur) FROM (
SELECT handler, 0 AS failed, duration_us AS dur FROM (SELECT handler, duration_us FROM eventbus_events
  WHERE id >= ? AND started_at >= ? AND attempts = 1 AND last_error = '' AND status IN ('succeeded', 'published')
  ORDER BY id DESC LIMIT ` + window + `) clean
UNION ALL
SELECT handler, CASE WHEN error <> '' THEN 1 ELSE 0 END, duration_us FROM eventbus_attempts
  WHERE started_at >= ? AND id > (SELECT COALESCE(MAX(id), 0) - ` + window + ` FROM eventbus_attempts)
) recent GROUP BY handler`)
	rows, err := s.db.QueryContext(ctx, q, idFloor(since.Add(-time.Second)), since.UnixMicro(), since.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("modelevent: slowest handlers: %w", err)
	}
	defer rows.Close()
	var out []HandlerLatency
	for rows.Next() {
		var h HandlerLatency
		var sum, max int64
		if err := rows.Scan(&h.Handler, &h.Attempts, &h.Errors, &sum, &max); err != nil {
			return nil, fmt.Errorf("modelevent: slowest handlers: %w", err)
		}
		if h.Attempts > 0 {
			h.Avg = time.Duration(sum/h.Attempts) * time.Microsecond
		}
		h.Max = time.Duration(max) * time.Microsecond
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("modelevent: slowest handlers: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Avg != out[j].Avg {
			return out[i].Avg > out[j].Avg
		}
		return out[i].Handler < out[j].Handler
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
