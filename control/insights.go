package control

import (
	"context"
	"errors"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-eventbus/eventbus/modelevent"
)

// insightStore is the part of a store that answers the console's overview; the SQL
// store implements it.
type insightStore interface {
	Timeline(ctx context.Context, f modelevent.Filter, bucket time.Duration) ([]modelevent.TimelinePoint, error)
	SlowestHandlers(ctx context.Context, since time.Time, limit int) ([]modelevent.HandlerLatency, error)
}

// ErrNoInsights is returned by the overview calls when the event store cannot answer
// them (a custom store without the SQL store's insight queries).
var ErrNoInsights = errors.New("control: this event store has no overview queries (it needs the SQL store)")

func (i *Inspector) insights() (insightStore, error) {
	s, ok := i.events.(insightStore)
	if !ok {
		return nil, ErrNoInsights
	}
	return s, nil
}

// Timeline counts the events matching f per time bucket, topic, direction and status,
// drawn from the ModelEvent rows. f.Since must be set.
func (i *Inspector) Timeline(ctx context.Context, f modelevent.Filter, bucket time.Duration) ([]modelevent.TimelinePoint, error) {
	s, err := i.insights()
	if err != nil {
		return nil, err
	}
	return s.Timeline(ctx, f, bucket)
}

// SlowestHandlers lists the handlers with the slowest average attempt since since.
func (i *Inspector) SlowestHandlers(ctx context.Context, since time.Time, limit int) ([]modelevent.HandlerLatency, error) {
	s, err := i.insights()
	if err != nil {
		return nil, err
	}
	return s.SlowestHandlers(ctx, since, limit)
}

// ErrorGroup is one shape of error of one handler and topic: the rows whose last
// errors differ only in numbers, ids and quoted values.
type ErrorGroup struct {
	// Fingerprint is the error with numbers, UUIDs, ULIDs, long hex strings and
	// quoted values masked ("<n>", "<uuid>", "<id>", "<hex>", "<q>"), and its first
	// line only.
	Fingerprint string `json:"fingerprint"`
	// Example is the last error of the newest row of the group, as written.
	Example string `json:"example"`
	// ExampleID is that row's id.
	ExampleID string `json:"example_id"`
	Handler   string `json:"handler"`
	Topic     string `json:"topic"`
	// Count is how many of the rows read have this shape.
	Count int64 `json:"count"`
	// LastAt is when the newest of these rows was written.
	LastAt time.Time `json:"last_at"`
}

// TopErrorsScan bounds how many of the newest rows with an error TopErrors reads.
const TopErrorsScan = 5000

// errorStatuses are the statuses of rows whose last error is still their state.
var errorStatuses = []modelevent.Status{modelevent.StatusFailed, modelevent.StatusPoisoned, modelevent.StatusRetrying, modelevent.StatusPublishFailed}

// TopErrors groups the errors of the events matching f (without statuses in f: the
// failed, poisoned, retrying and publish_failed ones) by handler, topic and
// fingerprint, most frequent first, at most limit groups (default 10). It reads the
// newest TopErrorsScan such rows; scanned reports how many it read, and more whether
// there were others.
func (i *Inspector) TopErrors(ctx context.Context, f modelevent.Filter, limit int) (groups []ErrorGroup, scanned int, more bool, err error) {
	if limit <= 0 {
		limit = 10
	}
	if len(f.Statuses) == 0 {
		f.Statuses = errorStatuses
	}
	type key struct{ handler, topic, fp string }
	byKey := map[key]*ErrorGroup{}
	opts := modelevent.ListOptions{Limit: 1000}
	for {
		page, err := i.events.List(ctx, f, opts)
		if err != nil {
			return nil, scanned, false, err
		}
		for _, ev := range page.Events {
			if scanned == TopErrorsScan {
				more = true
				break
			}
			scanned++
			if ev.LastError == "" {
				continue
			}
			k := key{ev.Handler, ev.Topic, Fingerprint(ev.LastError)}
			g := byKey[k]
			if g == nil {
				g = &ErrorGroup{Fingerprint: k.fp, Example: ev.LastError, ExampleID: ev.ID, Handler: ev.Handler, Topic: ev.Topic, LastAt: ev.UpdatedAt}
				byKey[k] = g
			}
			g.Count++
			if ev.UpdatedAt.After(g.LastAt) {
				g.LastAt = ev.UpdatedAt
			}
		}
		if more || page.NextCursor == "" {
			break
		}
		opts.Cursor = page.NextCursor
	}
	for _, g := range byKey {
		groups = append(groups, *g)
	}
	sort.Slice(groups, func(a, b int) bool {
		if groups[a].Count != groups[b].Count {
			return groups[a].Count > groups[b].Count
		}
		if !groups[a].LastAt.Equal(groups[b].LastAt) {
			return groups[a].LastAt.After(groups[b].LastAt)
		}
		return groups[a].Fingerprint < groups[b].Fingerprint
	})
	if len(groups) > limit {
		groups = groups[:limit]
	}
	return groups, scanned, more, nil
}

var (
	fpQuoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	fpUUID   = regexp.MustCompile(`(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`)
	fpULID   = regexp.MustCompile(`\b[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}\b`)
	fpHex    = regexp.MustCompile(`(?i)\b(?:0x)?[0-9a-f]{8,}\b`)
	fpNumber = regexp.MustCompile(`[-+]?\d+(?:[.,:]\d+)*`)
	fpSpace  = regexp.MustCompile(`\s+`)
)

// Fingerprint is the shape of an error message: its first line with quoted values,
// UUIDs, ULIDs, hex strings of 8 or more digits and numbers masked, so that
// "order 42 rejected" and "order 7 rejected" are one error. It is at most 200 bytes.
func Fingerprint(msg string) string {
	if i := strings.IndexAny(msg, "\r\n"); i >= 0 {
		msg = msg[:i]
	}
	msg = fpQuoted.ReplaceAllString(msg, "<q>")
	msg = fpUUID.ReplaceAllString(msg, "<uuid>")
	msg = fpULID.ReplaceAllString(msg, "<id>")
	msg = fpHex.ReplaceAllStringFunc(msg, func(h string) string {
		if strings.Trim(h, "0123456789") == "" {
			return h // a number: masked below
		}
		return "<hex>"
	})
	msg = fpNumber.ReplaceAllString(msg, "<n>")
	msg = strings.TrimSpace(fpSpace.ReplaceAllString(msg, " "))
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "") + "…"
	}
	return msg
}
