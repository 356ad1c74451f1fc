package admin

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

// loadRetention returns the retention in force for the overview; nil when the store
// cannot tell (a store without the lease table: its migrations are not applied).
func (h *handler) loadRetention(ctx context.Context) *control.Retention {
	r, err := h.insp.Retention(ctx)
	if err != nil {
		h.log.Warn("admin: retention", "error", err)
		return nil
	}
	return &r
}

// retentionLine is the overview's one line on retention: the policy in force (or
// off), who prunes and when it last did, and the oldest row kept.
func retentionLine(r *control.Retention, now time.Time) string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	p := r.Report.Policy
	if !r.Active {
		b.WriteString("Retention: off — no bus process prunes, every row is kept")
	} else {
		b.WriteString("Retention: ")
		var parts []string
		for _, st := range modelevent.Statuses {
			if d, ok := p.MaxAge[st]; ok {
				parts = append(parts, string(st)+" "+days(d))
			}
		}
		if p.MaxRows > 0 {
			parts = append(parts, "at most "+strconv.FormatInt(p.MaxRows, 10)+" rows")
		}
		b.WriteString(strings.Join(parts, ", "))
		b.WriteString(" — pruned every " + days(p.Interval) + " by " + r.Holder)
		if !r.Report.LastRun.IsZero() {
			b.WriteString(", last " + ago(r.Report.LastRun))
			if res := r.Report.LastResult; res != nil {
				b.WriteString(" (" + strconv.FormatInt(res.Events, 10) + " rows)")
			}
		}
		if r.Report.LastError != "" {
			b.WriteString(", failing: " + truncate(firstLine(r.Report.LastError), 120))
		}
	}
	if r.OldestID != "" {
		b.WriteString(". Oldest row kept: " + utc(r.OldestAt) + " (" + days(now.Sub(r.OldestAt).Round(time.Minute)) + " old)")
	}
	return b.String()
}

// days formats d with whole days first: 7d, 1d12h, 36m.
func days(d time.Duration) string {
	const day = 24 * time.Hour
	if d < day {
		return d.String()
	}
	out := strconv.FormatInt(int64(d/day), 10) + "d"
	if rest := (d % day).Round(time.Minute); rest > 0 {
		out += strings.TrimSuffix(strings.TrimSuffix(rest.String(), "0s"), "0m")
	}
	return out
}
