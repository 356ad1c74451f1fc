package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/internal/jsonfmt"
	"github.com/go-eventbus/eventbus/modelevent"
)

// listParams are the parameters of GET api/events.
var listParams = []string{"limit", "cursor"}

func (h *handler) apiEvents(w http.ResponseWriter, r *http.Request) {
	q, err := params(r, filterParams, listParams)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f, err := parseFilter(q, time.Now())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	opts, err := parseList(q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page, err := h.insp.Events(r.Context(), f, opts)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page) // modelevent.Page's encoding, as events list --json prints it
}

func (h *handler) apiEvent(w http.ResponseWriter, r *http.Request) {
	if _, err := params(r); err != nil {
		h.fail(w, r, err)
		return
	}
	id, err := pathID(r.PathValue("id"), "id")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ev, err := h.insp.Event(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// A detail carries "history" (and "duplicates"), [] when no attempt was kept.
	writeJSON(w, http.StatusOK, ev)
}

func (h *handler) apiStats(w http.ResponseWriter, r *http.Request) {
	q, err := params(r, filterParams)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f, err := parseFilter(q, time.Now())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	st, err := h.insp.Stats(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// actionResponse is the body of a successful action on one event: ok is false when
// the action ran in this process and failed (error says why); command is set when a
// bus process will run it.
type actionResponse struct {
	OK bool `json:"ok"`
	control.Outcome
}

func (h *handler) apiEventAction(w http.ResponseWriter, r *http.Request) {
	v, err := formValues(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := checkParams(v, []string{"consumer", "next", "confirm"}); err != nil {
		h.fail(w, r, err)
		return
	}
	id, err := pathID(r.PathValue("id"), "id")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	action := control.CommandKind(r.PathValue("action"))
	if !action.Valid() && action != actionDelete {
		h.fail(w, r, badParam("action", "unknown action "+clip(string(action))+" (accepted: retry, replay, redrive, delete)"))
		return
	}
	ctx := r.Context()
	ev, err := h.insp.Event(ctx, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if action == actionDelete {
		h.deleteEvent(w, r, v, ev)
		return
	}
	consumer := v.Get("consumer")
	if len(consumer) > 191 {
		h.fail(w, r, badParam("consumer", "longer than 191 characters"))
		return
	}
	if h.confirmForm(w, r, v, eventQuestion(action, ev, consumer)) {
		return
	}
	var out control.Outcome
	switch action {
	case control.Retry:
		if consumer == "" && ev.Direction != modelevent.Consumed {
			h.fail(w, r, badParam("consumer", "this is a produced event: name the consumer to run (or replay it)"))
			return
		}
		out, err = h.insp.Retry(ctx, id, consumer)
	case control.Replay:
		out, err = h.insp.Replay(ctx, id)
	case control.Redrive:
		if ev.Direction != modelevent.Consumed || ev.Status != modelevent.StatusPoisoned {
			h.fail(w, r, &conflictError{fmt.Sprintf("only a poisoned consumed event can be redriven; this one is %s %s", ev.Direction, ev.Status)})
			return
		}
		out, err = h.insp.Redrive(ctx, id)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("eventbus console: event action", "action", action, "event", id, "consumer", consumer, "error", out.Error)
	if h.redirectForm(w, r, v) {
		return
	}
	writeJSON(w, http.StatusOK, actionResponse{OK: out.Error == "", Outcome: out})
}

// bulkResponse is the body of POST api/events/{action}.
type bulkResponse struct {
	// DryRun is true when nothing was done: Matched is how many events would be.
	DryRun bool
	control.BulkResult
}

// MarshalJSON writes "dry_run" and the members of the BulkResult (whose own
// MarshalJSON would otherwise be the whole encoding).
func (b bulkResponse) MarshalJSON() ([]byte, error) {
	return jsonfmt.Merge(struct {
		DryRun bool `json:"dry_run"`
	}{b.DryRun}, b.BulkResult)
}

// bulkFilter narrows f to what action can apply to: retries apply to consumed events,
// redrives to poisoned consumed ones.
func bulkFilter(action control.CommandKind, f modelevent.Filter) (modelevent.Filter, error) {
	switch action {
	case control.Retry:
		if f.Direction == modelevent.Produced {
			return f, badParam("direction", "a bulk retry applies to consumed events; replay produced ones")
		}
		f.Direction = modelevent.Consumed
	case control.Redrive:
		if f.Direction == modelevent.Produced {
			return f, badParam("direction", "a bulk redrive applies to poisoned consumed events")
		}
		for _, s := range f.Statuses {
			if s != modelevent.StatusPoisoned {
				return f, badParam("status", "a bulk redrive applies to poisoned events only")
			}
		}
		f.Direction, f.Statuses = modelevent.Consumed, []modelevent.Status{modelevent.StatusPoisoned}
	}
	return f, nil
}

func (h *handler) apiBulk(w http.ResponseWriter, r *http.Request) {
	v, err := formValues(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := checkParams(v, filterParams, []string{"dry_run", "next", "confirm", "id", "selection"}); err != nil {
		h.fail(w, r, err)
		return
	}
	action := control.CommandKind(r.PathValue("action"))
	if !action.Valid() {
		h.fail(w, r, badParam("action", "unknown bulk action "+clip(string(action))+" (accepted: retry, replay, redrive)"))
		return
	}
	dry, err := parseDryRun(v)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if len(v["id"]) > 0 {
		h.bulkSelection(w, r, action, v, dry)
		return
	}
	if v.Get("selection") != "" { // the checked rows' form, with no row checked
		h.fail(w, r, badParam("id", "no event selected: check the rows to act on"))
		return
	}
	f, err := parseFilter(v, time.Now())
	if err == nil {
		f, err = bulkFilter(action, f)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx := r.Context()
	n, err := h.insp.Count(ctx, f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	matched, err := h.bulkMatched(r, action, f, n)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if dry {
		writeJSON(w, http.StatusOK, bulkResponse{DryRun: true, BulkResult: control.BulkResult{Matched: int(matched), Rows: int(n)}})
		return
	}
	if n > int64(h.opts.MaxBulk) {
		h.fail(w, r, &conflictError{fmt.Sprintf("the filter matches %d events, over the bulk limit of %d: narrow the filter", n, h.opts.MaxBulk)})
		return
	}
	if n == 0 {
		if h.redirectForm(w, r, v) {
			return
		}
		writeJSON(w, http.StatusOK, bulkResponse{})
		return
	}
	if h.confirmForm(w, r, v, bulkQuestion(action, matched, n)) {
		return
	}
	res, err := h.insp.Bulk(ctx, action, f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("eventbus console: bulk action", "action", action, "matched", res.Matched, "done", res.Done, "enqueued", res.Enqueued, "failed", res.Failed)
	if h.redirectForm(w, r, v) {
		return
	}
	writeJSON(w, http.StatusOK, bulkResponse{BulkResult: res})
}

// redirectForm answers a plain HTML form post (one with a "next" field, sent when
// JavaScript is off) with a redirect to that console page. next must be a path
// relative to the console.
func (h *handler) redirectForm(w http.ResponseWriter, r *http.Request, v url.Values) bool {
	next := v.Get("next")
	if next == "" {
		return false
	}
	http.Redirect(w, r, info(r).base+safeNext(next), http.StatusSeeOther)
	return true
}

// safeNext is next when it is a path relative to the console, else "".
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(next, "/") || strings.ContainsAny(next, "\\\r\n") {
		return ""
	}
	return next
}

// bulkMatched is what a bulk action applies to among the rows rows matching f: rows,
// or for a replay the distinct messages (read when rows is within the bulk limit).
func (h *handler) bulkMatched(r *http.Request, action control.CommandKind, f modelevent.Filter, rows int64) (int64, error) {
	if action != control.Replay || rows == 0 || rows > int64(h.opts.MaxBulk) {
		return rows, nil
	}
	ids, _, _, err := h.insp.BulkTargets(r.Context(), action, f, h.opts.MaxBulk)
	return int64(len(ids)), err
}

func bulkQuestion(action control.CommandKind, matched, rows int64) string {
	switch action {
	case control.Retry:
		return fmt.Sprintf("Retry %s matching the filter, each with its own consumer?", plural(matched, "consumed event"))
	case control.Replay:
		return fmt.Sprintf("Replay %s (%s) matching the filter to their topics, for every consumer?", plural(matched, "message"), plural(rows, "row"))
	}
	return fmt.Sprintf("Redrive %s matching the filter, each for the consumer that poisoned it?", plural(matched, "poisoned event"))
}

func eventQuestion(action control.CommandKind, ev modelevent.ModelEvent, consumer string) string {
	switch action {
	case control.Retry:
		if consumer == "" {
			consumer = ev.Handler
		}
		return "Run consumer " + consumer + " on message " + ev.MessageUUID + " again?"
	case control.Replay:
		return "Publish message " + ev.MessageUUID + " again to " + ev.Topic + ", for every consumer?"
	}
	return "Redrive poisoned message " + ev.MessageUUID + " to " + ev.Topic + " for " + ev.Handler + " only?"
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return itoa(int(n)) + " " + noun + "s"
}

// bulkSelection applies action to the events selected by their ids (the "id"
// parameters): the checked rows of the events page; with dry, it only counts.
func (h *handler) bulkSelection(w http.ResponseWriter, r *http.Request, action control.CommandKind, v url.Values, dry bool) {
	for _, k := range filterParams {
		if v.Get(k) != "" {
			h.fail(w, r, badParam(k, "a bulk action takes a selection (id) or a filter, not both"))
			return
		}
	}
	ids := make([]string, 0, len(v["id"]))
	for _, raw := range v["id"] {
		id, err := pathID(raw, "id")
		if err != nil {
			h.fail(w, r, err)
			return
		}
		ids = append(ids, id)
	}
	// One read of the selected events, for the count as for the action: an id that is
	// no event counts as failed in both, and does not fail the rest.
	sel, err := h.insp.SelectionTargets(r.Context(), action, ids)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if dry {
		writeJSON(w, http.StatusOK, bulkResponse{DryRun: true, BulkResult: sel.Counts()})
		return
	}
	if h.confirmForm(w, r, v, selectionQuestion(sel)) {
		return
	}
	res := h.insp.ApplySelection(r.Context(), sel)
	h.log.Info("eventbus console: bulk action on a selection", "action", action, "selected", sel.Rows, "done", res.Done, "enqueued", res.Enqueued, "failed", res.Failed)
	if h.redirectForm(w, r, v) {
		return
	}
	writeJSON(w, http.StatusOK, bulkResponse{BulkResult: res})
}

// selectionQuestion is the confirmation question of a bulk action on sel.
func selectionQuestion(sel control.Selection) string {
	action, rows := sel.Kind, int64(sel.Rows)
	q := fmt.Sprintf("%s the %s selected?", strings.ToUpper(string(action[:1]))+string(action[1:]), plural(rows, "event"))
	if action == control.Replay {
		q = fmt.Sprintf("Replay the %s of the %s selected, for every consumer?", plural(int64(len(sel.Targets)), "message"), plural(rows, "event"))
	}
	switch n := len(sel.Unknown); {
	case n == 1:
		q += " 1 of them is no longer in the store: it counts as failed."
	case n > 1:
		q += fmt.Sprintf(" %d of them are no longer in the store: they count as failed.", n)
	}
	return q
}

// actionDelete deletes a poisoned or failed consumed event: the operator resolved it.
const actionDelete control.CommandKind = "delete"

// deleteResponse is the body of POST api/events/{id}/delete.
type deleteResponse struct {
	OK      bool   `json:"ok"`
	Deleted string `json:"deleted"`
}

func (h *handler) deleteEvent(w http.ResponseWriter, r *http.Request, v url.Values, ev modelevent.ModelEvent) {
	if !control.Deletable(ev) {
		h.fail(w, r, &conflictError{fmt.Sprintf("only a poisoned or failed consumed event can be deleted; this one is %s %s", ev.Direction, ev.Status)})
		return
	}
	if h.confirmForm(w, r, v, "Delete the "+string(ev.Status)+" event "+ev.ID+" of "+ev.Handler+" with its attempts? Its message is not published again.") {
		return
	}
	if err := h.insp.Delete(r.Context(), ev.ID); err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("eventbus console: event deleted", "event", ev.ID, "handler", ev.Handler, "status", ev.Status)
	if v.Get("next") != "" {
		// The event's page is gone: back to the list of what is still poisoned.
		v.Set("next", "events?status=poisoned,failed")
	}
	if h.redirectForm(w, r, v) {
		return
	}
	writeJSON(w, http.StatusOK, deleteResponse{OK: true, Deleted: ev.ID})
}
