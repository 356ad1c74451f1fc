package admin

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/internal/jsonfmt"
	"github.com/go-eventbus/eventbus/modelevent"
)

// The JSON API of the store's schedule (docs/retries.md): scheduled retries and
// delayed publishes, and the operator's actions on one.

// scheduledError maps the schedule's errors to statuses: nothing scheduled (or a
// process running it now) is a conflict, a store without schedule 501.
func scheduledError(err error) error {
	switch {
	case errors.Is(err, modelevent.ErrNotScheduled):
		return &conflictError{err.Error()}
	case errors.Is(err, control.ErrNoSchedule):
		return &notImplementedError{err}
	}
	return err
}

type notImplementedError struct{ err error }

func (e *notImplementedError) Error() string { return e.err.Error() }
func (e *notImplementedError) Unwrap() error { return control.ErrNoControlPlane }

// apiScheduled serves GET api/scheduled?kind=retry|publish&limit=N.
func (h *handler) apiScheduled(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkParams(q, []string{"kind", "limit"}); err != nil {
		h.fail(w, r, err)
		return
	}
	kind := modelevent.ScheduleKind(q.Get("kind"))
	if kind != "" && kind != modelevent.ScheduleRetry && kind != modelevent.SchedulePublish {
		h.fail(w, r, badParam("kind", "want retry or publish"))
		return
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			h.fail(w, r, badParam("limit", "want 1 to 1000"))
			return
		}
		limit = n
	}
	list, err := h.insp.Scheduled(r.Context(), kind, limit)
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
		at, perr := time.Parse(time.RFC3339, v.Get("at"))
		if perr != nil { // the console's datetime-local field: UTC, without a zone
			if at, perr = time.Parse("2006-01-02T15:04:05", v.Get("at")); perr != nil {
				at, perr = time.Parse("2006-01-02T15:04", v.Get("at"))
			}
		}
		if perr != nil {
			h.fail(w, r, badParam("at", "want an RFC 3339 time, e.g. 2026-12-01T12:00:00Z"))
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
