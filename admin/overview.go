package admin

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/internal/jsonfmt"
	"github.com/go-eventbus/eventbus/modelevent"
)

// overview is the body of GET api/overview and the data of the overview page.
type overview struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Bucket is the width of a timeline bucket, in nanoseconds.
	Bucket   time.Duration               `json:"bucket"`
	Stats    modelevent.Stats            `json:"stats"`
	Timeline []modelevent.TimelinePoint  `json:"timeline"`
	Slowest  []modelevent.HandlerLatency `json:"slowest_handlers"`
	// TopErrors groups the errors of the newest failing rows by their shape
	// (control.Fingerprint); TopErrorsScanned is how many rows were read for it.
	TopErrors        []control.ErrorGroup `json:"top_errors"`
	TopErrorsScanned int                  `json:"top_errors_scanned"`
	// Retention is the retention in force and the oldest row kept; absent when the
	// store cannot tell.
	Retention *control.Retention `json:"retention,omitempty"`
}

// MarshalJSON encodes ov by the console's JSON conventions (jsonfmt).
func (ov overview) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(ov) }

// overviewSpans are the time spans the overview page offers, with their bucket size.
var overviewSpans = []struct {
	label  string
	span   time.Duration
	bucket time.Duration
}{
	{"15m", 15 * time.Minute, 30 * time.Second},
	{"1h", time.Hour, time.Minute},
	{"6h", 6 * time.Hour, 5 * time.Minute},
	{"24h", 24 * time.Hour, 30 * time.Minute},
	{"7d", 7 * 24 * time.Hour, 4 * time.Hour},
}

// autoBucket picks a bucket that splits span into at most about 60 bars: a round
// size up to a week, then whole weeks, so that any span (since=1970-01-01 too) stays
// far under modelevent.MaxTimelineBuckets.
func autoBucket(span time.Duration) time.Duration {
	for _, b := range []time.Duration{time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute,
		10 * time.Minute, 30 * time.Minute, time.Hour, 4 * time.Hour, 12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour} {
		if span/b <= 60 {
			return b
		}
	}
	const week = 7 * 24 * time.Hour
	weeks := (span/60 + week - 1) / week
	return weeks * week
}

// parseOverview reads since (default 1h), bucket (default automatic) and the filter.
func parseOverview(v url.Values, now time.Time) (modelevent.Filter, time.Duration, error) {
	if v.Get("since") == "" {
		v = cloneValues(v)
		v.Set("since", "1h")
	}
	f, err := parseFilter(v, now)
	if err != nil {
		return f, 0, err
	}
	until := f.Until
	if until.IsZero() {
		until = now
	}
	bucket := autoBucket(until.Sub(f.Since))
	if s := v.Get("bucket"); s != "" {
		b, err := parseDuration(s)
		if err != nil || b < time.Second {
			return f, 0, badParam("bucket", "must be a duration of at least 1s, e.g. 1m")
		}
		if until.Sub(f.Since)/b > modelevent.MaxTimelineBuckets {
			return f, 0, badParam("bucket", "too small for the time range (at most "+itoa(modelevent.MaxTimelineBuckets)+" buckets)")
		}
		bucket = b
	}
	return f, bucket, nil
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, s := range v {
		out[k] = append([]string(nil), s...)
	}
	return out
}

func (h *handler) loadOverview(ctx context.Context, f modelevent.Filter, bucket time.Duration, now time.Time) (overview, error) {
	ov := overview{Since: f.Since, Until: f.Until, Bucket: bucket}
	if ov.Until.IsZero() {
		ov.Until = now
	}
	var err error
	if ov.Stats, err = h.insp.Stats(ctx, f); err != nil {
		return ov, err
	}
	if ov.Timeline, err = h.insp.Timeline(ctx, f, bucket); err != nil {
		return ov, err
	}
	if ov.Slowest, err = h.insp.SlowestHandlers(ctx, f.Since, 10); err != nil {
		return ov, err
	}
	if ov.TopErrors, ov.TopErrorsScanned, _, err = h.insp.TopErrors(ctx, f, 10); err != nil {
		return ov, err
	}
	ov.Retention = h.loadRetention(ctx)
	return ov, nil
}

func (h *handler) apiOverview(w http.ResponseWriter, r *http.Request) {
	q, err := params(r, filterParams, []string{"bucket"})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	now := time.Now()
	f, bucket, err := parseOverview(q, now)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ov, err := h.loadOverview(r.Context(), f, bucket, now)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ov)
}

// chart is one topic's bars in the overview page: per bucket, succeeded (ok),
// in progress (pending, retrying) and failed (failed, poisoned, publish_failed).
type chart struct {
	Topic     string
	Direction modelevent.Direction
	Total     int64
	Failed    int64
	Max       int64
	Bars      []bar
	Width     int
	Height    int
	// Ticks label the time axis (UTC), left to right; Half is Max/2, the middle
	// grid line's value.
	Ticks []tick
	Half  int64
}

// tick is one label of a chart's time axis, at Pct percent of its width.
type tick struct {
	Pct   float64
	Label string
}

// timeLayout is how the labels of a chart show a time, by bucket and span.
func timeLayout(bucket, span time.Duration) string {
	switch {
	case bucket >= 24*time.Hour:
		return "2006-01-02"
	case span > 24*time.Hour:
		return "01-02 15:04"
	case bucket >= time.Minute:
		return "15:04"
	}
	return "15:04:05"
}

type bar struct {
	X, W                 float64
	OkY, OkH, MidY, MidH float64
	FailY, FailH         float64
	Ok, Mid, Fail        int64
	Label                string
}

func failedStatus(s modelevent.Status) bool {
	return s == modelevent.StatusFailed || s == modelevent.StatusPoisoned || s == modelevent.StatusPublishFailed
}

// charts turns a timeline into one chart per topic and direction, sorted by topic.
func charts(ov overview) []chart {
	const width, height = 560.0, 90.0
	n := int(ov.Until.Sub(ov.Since)/ov.Bucket) + 1
	if n < 1 || ov.Bucket <= 0 {
		return nil
	}
	first := ov.Since.Truncate(ov.Bucket)
	layout := timeLayout(ov.Bucket, ov.Until.Sub(ov.Since))
	type key struct {
		topic string
		dir   modelevent.Direction
	}
	counts := map[key][][3]int64{}
	var keys []key
	for _, p := range ov.Timeline {
		k := key{p.Topic, p.Direction}
		c, ok := counts[k]
		if !ok {
			c = make([][3]int64, n+1)
			keys = append(keys, k)
		}
		i := int(p.Start.Sub(first) / ov.Bucket)
		if i < 0 || i > n {
			continue
		}
		switch {
		case failedStatus(p.Status):
			c[i][2] += p.Count
		case p.Status == modelevent.StatusSucceeded || p.Status == modelevent.StatusPublished:
			c[i][0] += p.Count
		default:
			c[i][1] += p.Count
		}
		counts[k] = c
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].dir < keys[j].dir
	})
	var out []chart
	for _, k := range keys {
		c := counts[k]
		ch := chart{Topic: k.topic, Direction: k.dir, Width: int(width), Height: int(height)}
		for _, v := range c {
			ch.Total += v[0] + v[1] + v[2]
			ch.Failed += v[2]
			ch.Max = max(ch.Max, v[0]+v[1]+v[2])
		}
		bw := width / float64(len(c))
		ch.Half = ch.Max / 2
		for k := 0; k <= 4; k++ {
			i := k * (len(c) - 1) / 4
			ch.Ticks = append(ch.Ticks, tick{Pct: float64(i) * 100 / float64(len(c)), Label: first.Add(time.Duration(i) * ov.Bucket).UTC().Format(layout)})
		}
		for i, v := range c {
			if v[0]+v[1]+v[2] == 0 {
				continue
			}
			scale := (height - 2) / float64(max(ch.Max, 1))
			b := bar{X: float64(i) * bw, W: max(bw-1, 1), Ok: v[0], Mid: v[1], Fail: v[2]}
			b.FailH = float64(v[2]) * scale
			b.FailY = height - b.FailH
			b.MidH = float64(v[1]) * scale
			b.MidY = b.FailY - b.MidH
			b.OkH = float64(v[0]) * scale
			b.OkY = b.MidY - b.OkH
			at := first.Add(time.Duration(i) * ov.Bucket).UTC()
			b.Label = at.Format(layout) + "–" + at.Add(ov.Bucket).Format(layout) + " UTC: ok " + itoa(int(v[0])) + ", in progress " + itoa(int(v[1])) + ", failed " + itoa(int(v[2]))
			ch.Bars = append(ch.Bars, b)
		}
		out = append(out, ch)
	}
	return out
}

// errorQuery is the longest literal part of a fingerprint (between masks), the text
// search that finds the rows of that error.
func errorQuery(fp string) string {
	best := ""
	for _, part := range maskRE.Split(fp, -1) {
		if part = strings.TrimSpace(strings.TrimSuffix(part, "…")); len(part) > len(best) {
			best = part
		}
	}
	return best
}

var maskRE = regexp.MustCompile(`<(?:n|q|uuid|id|hex)>`)
