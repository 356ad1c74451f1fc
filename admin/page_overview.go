package admin

import (
	"net/http"
	"net/url"
	"time"
)

type overviewData struct {
	overview
	Charts []chart
	Span   string
	Spans  []string
	Query  url.Values
	// RetentionLine says what retention is in force and the oldest row kept.
	RetentionLine string
}

func (h *handler) overviewPage(w http.ResponseWriter, r *http.Request) {
	q, err := params(r, filterParams, []string{"bucket"})
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	now := time.Now()
	f, bucket, err := parseOverview(q, now)
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	if q.Get("bucket") == "" {
		for _, s := range overviewSpans {
			if s.label == q.Get("since") {
				bucket = s.bucket
			}
		}
	}
	ov, err := h.loadOverview(r.Context(), f, bucket, now)
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	d := overviewData{overview: ov, Charts: charts(ov), Span: q.Get("since"), Query: filterQuery(q), RetentionLine: retentionLine(ov.Retention, now)}
	if d.Span == "" {
		d.Span = "1h"
	}
	for _, s := range overviewSpans {
		d.Spans = append(d.Spans, s.label)
	}
	h.render(w, r, http.StatusOK, "overview", h.page(r, "overview", "Overview", d))
}
