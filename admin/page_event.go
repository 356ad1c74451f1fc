package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

type eventData struct {
	Event        modelevent.ModelEvent
	Payload      string
	PayloadKind  string // "json", "text" or "binary"
	Metadata     []kv
	Attempts     []attemptView
	History      []historyEntry
	Related      []modelevent.ModelEvent
	RelatedMore  bool
	Siblings     []modelevent.ModelEvent
	CanRetry     bool
	CanRedrive   bool
	CanDelete    bool
	Next         string
	CorrelationQ string
	MessageQ     string
	TraceQ       string // the events of the trace
	TraceURL     string // the trace in the tracing UI (Options.TraceURL)
}

type attemptView struct {
	N         int
	StartedAt time.Time
	Duration  time.Duration
	Error     string
}

type historyEntry struct {
	At     time.Time
	Status string
	Note   string
	Bad    bool
}

func (h *handler) eventPage(w http.ResponseWriter, r *http.Request) {
	if _, err := params(r); err != nil {
		h.pageFail(w, r, err)
		return
	}
	id, err := pathID(r.PathValue("id"), "id")
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	ctx := r.Context()
	ev, err := h.insp.Event(ctx, id)
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	d := eventData{Event: ev, Next: "events/" + ev.ID}
	d.Payload, d.PayloadKind = showPayload(ev.Payload)
	for k, v := range ev.Metadata {
		d.Metadata = append(d.Metadata, kv{k, v})
	}
	sort.Slice(d.Metadata, func(i, j int) bool { return d.Metadata[i].K < d.Metadata[j].K })
	for i, a := range ev.History {
		d.Attempts = append(d.Attempts, attemptView{N: i + 1, StartedAt: a.StartedAt, Duration: a.Duration, Error: a.Error})
	}
	d.History = statusHistory(ev)
	d.CanRetry = ev.Direction == modelevent.Consumed
	d.CanRedrive = ev.Direction == modelevent.Consumed && ev.Status == modelevent.StatusPoisoned
	d.CanDelete = control.Deletable(ev)
	if ev.CorrelationID != "" {
		d.CorrelationQ = encodeQuery(nil, "correlation_id", ev.CorrelationID)
		p, err := h.insp.Events(ctx, modelevent.Filter{CorrelationID: ev.CorrelationID}, modelevent.ListOptions{Limit: 50})
		if err != nil {
			h.pageFail(w, r, err)
			return
		}
		d.Related, d.RelatedMore = p.Events, p.NextCursor != ""
	}
	d.MessageQ = encodeQuery(nil, "message_uuid", ev.MessageUUID)
	if ev.TraceID != "" {
		d.TraceQ = encodeQuery(nil, "trace_id", ev.TraceID)
		d.TraceURL = traceURL(h.opts.TraceURL, ev.TraceID)
	}
	p, err := h.insp.Events(ctx, modelevent.Filter{MessageUUID: ev.MessageUUID}, modelevent.ListOptions{Limit: 50})
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	for _, s := range p.Events {
		if s.ID != ev.ID {
			d.Siblings = append(d.Siblings, s)
		}
	}
	h.render(w, r, http.StatusOK, "event", h.page(r, "events", "Event "+ev.ID, d))
}

// traceURL is the link of trace id in the tracing UI of template (Options.TraceURL),
// or "" without a template.
func traceURL(template, id string) string {
	if template == "" {
		return ""
	}
	return strings.ReplaceAll(template, "{trace_id}", url.PathEscape(id))
}

// showPayload returns the payload for display: indented when it is JSON, as text
// when it is UTF-8, else as a hex dump of its first 4 KiB.
func showPayload(p []byte) (string, string) {
	if len(p) == 0 {
		return "", "text"
	}
	if json.Valid(p) {
		var buf bytes.Buffer
		if err := json.Indent(&buf, p, "", "  "); err == nil {
			return buf.String(), "json"
		}
	}
	if utf8.Valid(p) {
		return string(p), "text"
	}
	const hexdigits = "0123456789abcdef"
	var b bytes.Buffer
	for i, c := range p {
		if i == 4096 {
			b.WriteString("… (" + itoa(len(p)) + " bytes)")
			break
		}
		if i > 0 && i%32 == 0 {
			b.WriteByte('\n')
		} else if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&15])
	}
	return b.String(), "binary"
}

// statusHistory reconstructs how a row moved between statuses from its attempts:
// recorded, each attempt's outcome, then the current status.
func statusHistory(ev modelevent.ModelEvent) []historyEntry {
	first := "pending"
	if ev.Direction == modelevent.Produced {
		first = "recorded"
	}
	out := []historyEntry{{At: ev.CreatedAt, Status: first, Note: "row written"}}
	for i, a := range ev.History {
		e := historyEntry{At: a.StartedAt.Add(a.Duration), Status: "attempt " + itoa(i+1) + " ok", Note: "took " + fmtDuration(a.Duration)}
		if a.Error != "" {
			e.Status, e.Note, e.Bad = "attempt "+itoa(i+1)+" failed", firstLine(truncate(a.Error, 200)), true
		}
		out = append(out, e)
	}
	out = append(out, historyEntry{At: ev.UpdatedAt, Status: string(ev.Status), Note: "current status", Bad: failedStatus(ev.Status)})
	return out
}
