package admin

import (
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/go-eventbus/eventbus/modelevent"
)

// maxValues bounds how many values one parameter may repeat.
const maxValues = 16

// filterParams are the query parameters that make a modelevent.Filter.
var filterParams = []string{"direction", "status", "topic", "model", "object_id", "change", "handler", "correlation_id", "message_uuid", "trace_id", "since", "until", "q"}

// checkParams refuses parameters that are unknown, repeated too often, too long, or
// not UTF-8.
func checkParams(v url.Values, allowed ...[]string) error {
	for key, vals := range v {
		known := false
		for _, set := range allowed {
			for _, a := range set {
				if a == key {
					known = true
				}
			}
		}
		if !known {
			var all []string
			for _, set := range allowed {
				all = append(all, set...)
			}
			return badParam(clip(key), "unknown parameter (accepted: "+strings.Join(all, ", ")+")")
		}
		if limit := maxValuesOf(key); len(vals) > limit {
			return badParam(key, "repeated more than "+itoa(limit)+" times")
		}
		for _, s := range vals {
			if len(s) > MaxParamLen {
				return badParam(key, "longer than "+itoa(MaxParamLen)+" bytes")
			}
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				return badParam(key, "not valid UTF-8 text")
			}
		}
	}
	return nil
}

// clip shortens an unknown parameter name for an error message.
func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// parseFilter reads the filter parameters of v. Empty values are ignored.
func parseFilter(v url.Values, now time.Time) (modelevent.Filter, error) {
	var f modelevent.Filter
	if d := v.Get("direction"); d != "" {
		f.Direction = modelevent.Direction(d)
		if !f.Direction.Valid() {
			return f, badParam("direction", "unknown direction (accepted: produced, consumed)")
		}
	}
	seen := map[modelevent.Status]bool{}
	for _, raw := range v["status"] {
		for _, s := range strings.Split(raw, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			st := modelevent.Status(s)
			if !st.Valid() {
				return f, badParam("status", "unknown status "+strconv.Quote(clip(s))+" (accepted: "+statusList()+")")
			}
			if !seen[st] {
				seen[st] = true
				f.Statuses = append(f.Statuses, st)
			}
		}
	}
	f.Topic = v.Get("topic")
	f.Model = v.Get("model")
	f.ObjectID = v.Get("object_id")
	f.Change = modelevent.ChangeType(v.Get("change"))
	f.Handler = v.Get("handler")
	f.CorrelationID = v.Get("correlation_id")
	f.MessageUUID = v.Get("message_uuid")
	if f.TraceID = strings.ToLower(strings.TrimSpace(v.Get("trace_id"))); f.TraceID != "" && !validTraceID(f.TraceID) {
		return f, badParam("trace_id", "not a trace id (32 hex digits, as in a W3C traceparent)")
	}
	f.Text = v.Get("q")
	var err error
	if f.Since, err = parseTime("since", v.Get("since"), now); err != nil {
		return f, err
	}
	if f.Until, err = parseTime("until", v.Get("until"), now); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, badParam("until", "must be after since")
	}
	return f, nil
}

// validTraceID reports whether s is a W3C trace id: 32 lower-case hex digits.
func validTraceID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func statusList() string {
	var s []string
	for _, st := range modelevent.Statuses {
		s = append(s, string(st))
	}
	return strings.Join(s, ", ")
}

// parseTime reads a time parameter: a duration back from now ("15m", "24h", "7d"),
// an RFC 3339 time, or a date and time in UTC ("2006-01-02T15:04", "2006-01-02").
func parseTime(param, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := parseDuration(s); err == nil {
		if d <= 0 || d > 100*365*24*time.Hour {
			return time.Time{}, badParam(param, "duration out of range")
		}
		return now.Add(-d), nil
	}
	if t, ok := parseAbsTime(s); ok {
		return t, nil
	}
	return time.Time{}, badParam(param, "not a time (accepted: a duration back from now such as 15m, 24h or 7d; RFC 3339; 2006-01-02T15:04 in UTC)")
}

// parseAbsTime reads an RFC 3339 time, or a date and time without a zone in UTC
// ("2006-01-02T15:04:05", "2006-01-02T15:04" as a datetime-local field sends it,
// "2006-01-02 15:04", "2006-01-02").
func parseAbsTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// parseDuration is time.ParseDuration with a "d" (days) suffix.
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, err
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// parseList reads limit and cursor.
func parseList(v url.Values) (modelevent.ListOptions, error) {
	var o modelevent.ListOptions
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return o, badParam("limit", "must be a positive integer")
		}
		o.Limit = min(n, MaxListLimit)
	}
	if c := v.Get("cursor"); c != "" {
		if !modelevent.ValidID(c) {
			return o, badParam("cursor", "malformed cursor (it is the next_cursor of a previous page)")
		}
		o.Cursor = strings.ToUpper(c)
	}
	return o, nil
}

// parseDryRun reads the dry_run parameter of a bulk action: "1" or "true" only
// counts, "0", "false" or none acts. Those four spellings are the only ones accepted
// (not strconv.ParseBool's t, TRUE, F and the rest); anything else is refused rather
// than guessed.
func parseDryRun(v url.Values) (bool, error) {
	switch s := v.Get("dry_run"); s {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	default:
		return false, badParam("dry_run", "not a boolean: "+strconv.Quote(clip(s))+" (accepted: 1, true, 0, false)")
	}
}

// pathID reads and checks the {id} path value.
func pathID(raw, param string) (string, error) {
	if !modelevent.ValidID(raw) {
		why := "malformed id " + strconv.Quote(clip(raw)) + ": want an event id (a 26-character ULID)"
		if _, err := uuid.Parse(raw); err == nil {
			why += ", got a message UUID (list a message's events with ?message_uuid=)"
		}
		return "", badParam(param, why)
	}
	return strings.ToUpper(raw), nil
}

// filterQuery renders f back into query parameters (for links and bulk forms).
func filterQuery(v url.Values) url.Values {
	out := url.Values{}
	for _, k := range filterParams {
		for _, s := range v[k] {
			if s != "" {
				out.Add(k, s)
			}
		}
	}
	return out
}

// maxValuesOf is how often parameter key may repeat: "id" (a selection of rows for a
// bulk action) as often as a page has rows, others maxValues times.
func maxValuesOf(key string) int {
	if key == "id" {
		return MaxListLimit
	}
	return maxValues
}
