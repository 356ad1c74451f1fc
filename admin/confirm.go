package admin

import (
	"net/http"
	"net/url"
	"sort"
)

// confirmData is the data of the confirmation page.
type confirmData struct {
	Question string
	Action   string
	Fields   []kv
	Cancel   string
}

// confirmForm asks for confirmation of a plain HTML form post (one with a "next"
// field: JavaScript is off, so no confirm() dialog ran): without a "confirm" field it
// answers with a page that states question and posts the same fields again with
// confirm=yes, and reports true. Scripts and the pages' JavaScript do not send
// "next" and are not asked.
func (h *handler) confirmForm(w http.ResponseWriter, r *http.Request, v url.Values, question string) bool {
	if v.Get("next") == "" || v.Get("confirm") != "" {
		return false
	}
	d := confirmData{Question: question, Action: info(r).base + r.URL.Path[1:], Cancel: safeNext(v.Get("next"))}
	if r.URL.RawQuery != "" {
		d.Action += "?" + r.URL.RawQuery
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	q, _ := query(r)
	for _, k := range keys {
		if _, inQuery := q[k]; inQuery {
			continue // posted again through the action URL
		}
		for _, s := range v[k] {
			d.Fields = append(d.Fields, kv{k, s})
		}
	}
	d.Fields = append(d.Fields, kv{"confirm", "yes"})
	h.render(w, r, http.StatusOK, "confirm", h.page(r, "", "Confirm", d))
	return true
}
