package admin

import (
	"cmp"
	"errors"
	"net/http"

	"github.com/go-eventbus/eventbus/internal/jsonfmt"
	"github.com/go-eventbus/eventbus/modelevent"
)

// The JSON API of the store's schedule (docs/retries.md): scheduled retries and
// delayed publishes, and the operator's actions on one.

// scheduledError maps the schedule's errors to statuses: nothing scheduled (or a
// process running it now) is a conflict; a store without a schedule is 501 (statusOf).
func scheduledError(err error) error {
	if errors.Is(err, modelevent.ErrNotScheduled) {
		return &conflictError{err.Error()}
	}
	return err
}

// apiScheduled serves GET api/scheduled?kind=retry|publish&limit=N.
func (h *handler) apiScheduled(w http.ResponseWriter, r *http.Request) {
	q, err := params(r, []string{"kind", "limit"})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	kind := modelevent.ScheduleKind(q.Get("kind"))
	if kind != "" && kind != modelevent.ScheduleRetry && kind != modelevent.SchedulePublish {
		h.fail(w, r, badParam("kind", "want retry or publish"))
		return
	}
	o, err := parseList(q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	list, err := h.insp.Scheduled(r.Context(), kind, cmp.Or(o.Limit, 100))
	if err != nil {
		h.fail(w, r, scheduledError(err))
		return
	}
	writeJSON(w, http.StatusOK, jsonfmt.List(list))
}

// apiScheduledAction serves POST api/scheduled/{id}/{action}: retry-now, cancel, or
// reschedule with at=RFC 3339 time; id is the event's id.
func (h *handler) apiScheduledAction(w http.ResponseWriter, r *http.Request) {
	v, err := formValues(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := checkParams(v, []string{"at", "next", "confirm"}); err != nil {
		h.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	switch r.PathValue("action") {
	case "retry-now":
		err = h.insp.RetryNow(r.Context(), id)
	case "cancel":
		// A form posted without JavaScript is asked to confirm first (confirm.go).
		if h.confirmForm(w, r, v, "Cancel the schedule entry of event "+id+"? A retry ends failed; a delayed publish ends cancelled and is never sent.") {
			return
		}
		err = h.insp.CancelScheduled(r.Context(), id)
	case "reschedule":
		at, ok := parseAbsTime(v.Get("at")) // the console's datetime-local field: UTC, without a zone
		if !ok {
			h.fail(w, r, badParam("at", "want an RFC 3339 time, e.g. 2026-12-01T12:00:00Z, or 2026-12-01T12:00 in UTC"))
			return
		}
		err = h.insp.RescheduleScheduled(r.Context(), id, at)
	default:
		h.fail(w, r, badParam("action", "want retry-now, cancel or reschedule"))
		return
	}
	if err != nil {
		h.fail(w, r, scheduledError(err))
		return
	}
	h.log.Info("eventbus console: schedule action", "action", r.PathValue("action"), "event", id)
	if h.redirectForm(w, r, v) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "id": id, "action": r.PathValue("action")})
}
