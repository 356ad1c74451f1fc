package control

import (
	"context"
	"errors"
	"slices"
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

// ErrorStatuses returns the statuses of rows whose last error is still their state
// (failed, poisoned, retrying, publish_failed): those TopErrors reads when its filter
// names none. The slice is the caller's own.
func ErrorStatuses() []modelevent.Status {
	return slices.Clone(errorStatuses)
}

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

// Fingerprint is the shape of an error message: its first line with quoted values
// ("<q>"), UUIDs ("<uuid>"), ULIDs ("<id>"), hex strings of 8 or more digits
// ("<hex>") and numbers ("<n>", "1.5", "10.0.0.1:5432" included) masked and runs of
// space collapsed, so that "order 42 rejected" and "order 7 rejected" are one error.
// It is at most about 200 bytes. It scans the message once, without regular
// expressions: the overview fingerprints thousands of rows per refresh.
func Fingerprint(msg string) string {
	if i := strings.IndexAny(msg, "\r\n"); i >= 0 {
		msg = msg[:i]
	}
	var b strings.Builder
	b.Grow(len(msg))
	space := false
	for i := 0; i < len(msg) && b.Len() < 200; {
		c := msg[i]
		switch {
		case c == ' ' || c == '\t':
			space = true
			i++
			continue
		case space && b.Len() > 0:
			b.WriteByte(' ')
		}
		space = false
		switch {
		case c == '"' || c == '\'' || c == '`':
			if end := closingQuote(msg, i); end > 0 {
				b.WriteString("<q>")
				i = end + 1
				continue
			}
			b.WriteByte(c)
			i++
		case isAlnum(c):
			j := i
			for j < len(msg) && isAlnum(msg[j]) {
				j++
			}
			if isUUID(msg, i) {
				b.WriteString("<uuid>")
				i += 36
				continue
			}
			b.WriteString(maskWord(msg, i, j))
			i = j
			// A number goes on through "." "," ":" followed by a digit: 1.5, 10.0.0.1:80.
			for i+1 < len(msg) && strings.HasSuffix(b.String(), "<n>") && strings.IndexByte(".,:", msg[i]) >= 0 && isDigit(msg[i+1]) {
				k := i + 1
				for k < len(msg) && isDigit(msg[k]) {
					k++
				}
				i = k
			}
		default:
			b.WriteByte(c)
			i++
		}
	}
	out := b.String()
	if b.Len() >= 200 {
		out = strings.ToValidUTF8(out, "") + "…"
	}
	return out
}

// maskWord masks the alphanumeric word msg[i:j]: a ULID, a hex string, or its runs
// of digits.
func maskWord(msg string, i, j int) string {
	w := msg[i:j]
	if len(w) == 26 && w[0] >= '0' && w[0] <= '7' && isULID(w) {
		return "<id>"
	}
	if h := strings.TrimPrefix(strings.TrimPrefix(w, "0x"), "0X"); len(h) >= 8 && isHex(h) && strings.Trim(h, "0123456789") != "" {
		return "<hex>"
	}
	if !strings.ContainsAny(w, "0123456789") {
		return w
	}
	var b strings.Builder
	for k := 0; k < len(w); {
		if isDigit(w[k]) {
			for k < len(w) && isDigit(w[k]) {
				k++
			}
			b.WriteString("<n>")
			continue
		}
		b.WriteByte(w[k])
		k++
	}
	return b.String()
}

// closingQuote is the index of the quote closing the one at msg[i] (a backslash
// escapes inside "…" and '…'), or -1.
func closingQuote(msg string, i int) int {
	q := msg[i]
	for k := i + 1; k < len(msg); k++ {
		switch {
		case msg[k] == '\\' && q != '`':
			k++
		case msg[k] == q:
			return k
		}
	}
	return -1
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; !isDigit(s[i]) && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// isULID reports whether s (26 characters) is in Crockford's base32 alphabet.
func isULID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !isDigit(s[i]) && (c < 'a' || c > 'z' || c == 'i' || c == 'l' || c == 'o' || c == 'u') {
			return false
		}
	}
	return true
}

// isUUID reports whether a UUID (8-4-4-4-12 hex digits) starts at msg[i] and is not
// part of a longer word.
func isUUID(msg string, i int) bool {
	if len(msg)-i < 36 || (len(msg)-i > 36 && isAlnum(msg[i+36])) {
		return false
	}
	for k := 0; k < 36; k++ {
		c := msg[i+k]
		if k == 8 || k == 13 || k == 18 || k == 23 {
			if c != '-' {
				return false
			}
		} else if !isHex(msg[i+k : i+k+1]) {
			return false
		}
	}
	return true
}
