package admin

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

// failedStatuses is the "failed only" quick filter.
var failedStatuses = []modelevent.Status{modelevent.StatusFailed, modelevent.StatusPoisoned, modelevent.StatusPublishFailed}

type statusCount struct {
	Status modelevent.Status
	N      int64
	Query  string
	Active bool
}

type eventsData struct {
	// Query holds the filter parameters, Form the form fields' values.
	Query     url.Values
	Form      map[string]string
	Statuses  []modelevent.Status
	Events    []modelevent.ModelEvent
	Cursor    string
	NextQuery string
	// PrevQuery links the previous page (empty on the first); Page is this page's
	// number, From and To its rows' positions, Matching how many rows match.
	PrevQuery      string
	Page, From, To int
	Matching       int64
	Counts         []statusCount
	Total          int64
	FailedQuery    string
	FailedActive   bool
	AllQuery       string
	Topics         []string
	Spans          []string
	// Bulk counts: what each bulk action would apply to.
	BulkRetry, BulkReplay, BulkRedrive int64
	// BulkReplayRows is how many rows the replay's messages have.
	BulkReplayRows int64
	BulkFields     []kv
	Next           string
}

type kv struct{ K, V string }

func (h *handler) eventsPage(w http.ResponseWriter, r *http.Request) {
	q, err := params(r, filterParams, listParams, pageParams)
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	now := time.Now()
	f, err := parseFilter(q, now)
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	opts, err := parseList(q)
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	ctx := r.Context()
	page, err := h.insp.Events(ctx, f, opts)
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	fq := filterQuery(q)
	d := eventsData{Query: fq, Events: page.Events, Cursor: opts.Cursor, Statuses: modelevent.Statuses,
		Spans: []string{"15m", "1h", "24h", "7d"}, Form: map[string]string{}}
	for _, k := range append(append([]string{}, filterParams...), "limit") {
		d.Form[k] = strings.Join(q[k], ",")
	}
	keep := cloneValues(fq)
	if l := q.Get("limit"); l != "" {
		keep.Set("limit", l)
	}
	pos, err := parsePosition(q, opts.Cursor)
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	limit := opts.Limit
	if limit == 0 {
		limit = 50
	}
	d.Page = pos.page
	d.From = (pos.page-1)*limit + 1
	d.To = d.From + len(page.Events) - 1
	if page.NextCursor != "" {
		d.NextQuery = encodeQuery(keep, "cursor", page.NextCursor, "page", itoa(pos.page+1), "back", pos.push(opts.Cursor))
	}
	if opts.Cursor != "" {
		prev, back := pos.pop()
		d.PrevQuery = encodeQuery(keep, "cursor", prev, "page", itoa(max(pos.page-1, 1)), "back", back)
		if len(pos.back) == 0 || prev == "" {
			d.PrevQuery = encodeQuery(keep) // the first page
		}
		if d.PrevQuery == "" {
			d.PrevQuery = "?"
		}
	}
	// Counts per status, for the filter without its statuses.
	nostatus := f
	nostatus.Statuses = nil
	st, err := h.insp.Stats(ctx, nostatus)
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	d.Total = st.Total
	d.Matching = st.Total
	if len(f.Statuses) > 0 {
		d.Matching = 0
		for _, s := range f.Statuses {
			d.Matching += st.ByStatus[s]
		}
	}
	active := map[modelevent.Status]bool{}
	for _, s := range f.Statuses {
		active[s] = true
	}
	for _, s := range modelevent.Statuses {
		d.Counts = append(d.Counts, statusCount{Status: s, N: st.ByStatus[s], Active: active[s] && len(f.Statuses) == 1,
			Query: encodeQuery(fq, "status", string(s))})
	}
	d.FailedQuery = encodeQuery(fq, "status", statusParam(failedStatuses))
	d.FailedActive = len(f.Statuses) == len(failedStatuses) && active[failedStatuses[0]] && active[failedStatuses[1]] && active[failedStatuses[2]]
	d.AllQuery = encodeQuery(fq, "status", "")
	seen := map[string]bool{}
	for _, tc := range st.ByTopic {
		if !seen[tc.Topic] {
			seen[tc.Topic] = true
			d.Topics = append(d.Topics, tc.Topic)
		}
	}
	sort.Strings(d.Topics)
	if info(r).access >= AccessWrite {
		if d.BulkRetry, err = h.bulkCount(r, control.Retry, f); err != nil {
			h.pageFail(w, r, err)
			return
		}
		if d.BulkReplayRows, err = h.bulkCount(r, control.Replay, f); err != nil {
			h.pageFail(w, r, err)
			return
		}
		// Counting messages reads the rows: done for up to pageCountRows rows, so that
		// a refreshing page stays cheap; beyond, the button names the rows.
		d.BulkReplay = -1
		if d.BulkReplayRows <= pageCountRows {
			if d.BulkReplay, err = h.bulkMatched(r, control.Replay, f, d.BulkReplayRows); err != nil {
				h.pageFail(w, r, err)
				return
			}
		}
		if d.BulkRedrive, err = h.bulkCount(r, control.Redrive, f); err != nil {
			h.pageFail(w, r, err)
			return
		}
		for _, k := range filterParams {
			for _, v := range fq[k] {
				d.BulkFields = append(d.BulkFields, kv{k, v})
			}
		}
	}
	d.Next = "events" + encodeQuery(keep)
	if opts.Cursor != "" {
		d.Next = "events" + encodeQuery(keep, "cursor", opts.Cursor, "page", itoa(pos.page), "back", strings.Join(pos.back, ","))
	}
	title := "Events"
	if f.CorrelationID != "" {
		title = "Events of correlation " + truncate(f.CorrelationID, 40)
	} else if f.TraceID != "" {
		title = "Events of trace " + f.TraceID
	}
	h.render(w, r, http.StatusOK, "events", h.page(r, "events", title, d))
}

// bulkCount counts what the bulk action would apply to; -1 when it cannot apply.
func (h *handler) bulkCount(r *http.Request, action control.CommandKind, f modelevent.Filter) (int64, error) {
	bf, err := bulkFilter(action, f)
	if err != nil {
		return -1, nil
	}
	return h.insp.Count(r.Context(), bf)
}

// pageCountRows bounds the rows the events page reads to count the messages a bulk
// replay would publish.
const pageCountRows = 1000

// pageParams are the events page's parameters beyond the API's: the page number and
// the trail of cursors back to the first page, which make Previous possible over
// cursor pagination.
var pageParams = []string{"page", "back"}

// position is where a page of the events list is: its number and the cursors of the
// pages before it ("0" for the first page, which has none).
type position struct {
	page int
	back []string
}

// maxBack is how many previous pages the trail remembers: 20 cursors are about 540
// bytes, so that the "next" field of the page's forms, which carries the trail with
// the filter, stays under MaxParamLen. Further back, Previous leads to the first page.
const maxBack = 20

func parsePosition(v url.Values, cursor string) (position, error) {
	p := position{page: 1}
	if cursor == "" {
		return p, nil
	}
	if s := v.Get("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1_000_000 {
			return p, badParam("page", "must be a positive integer")
		}
		p.page = n
	}
	if s := v.Get("back"); s != "" {
		for _, c := range strings.Split(s, ",") {
			if c != "0" && !modelevent.ValidID(c) {
				return p, badParam("back", "malformed trail of page cursors")
			}
			p.back = append(p.back, strings.ToUpper(c))
		}
	}
	return p, nil
}

// push is the trail of the next page: this one's cursor added.
func (p position) push(cursor string) string {
	if cursor == "" {
		cursor = "0"
	}
	back := append(append([]string{}, p.back...), cursor)
	if len(back) > maxBack {
		back = back[len(back)-maxBack:]
	}
	return strings.Join(back, ",")
}

// pop is the cursor and trail of the previous page; without a trail (too deep, or
// a hand-made link) the first page.
func (p position) pop() (cursor, back string) {
	if len(p.back) == 0 {
		return "", ""
	}
	c := p.back[len(p.back)-1]
	if c == "0" {
		c = ""
	}
	return c, strings.Join(p.back[:len(p.back)-1], ",")
}
