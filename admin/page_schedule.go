package admin

import (
	"errors"
	"net/http"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

// scheduleData is the Schedule page: the scheduled retries and the delayed publishes
// (docs/retries.md).
type scheduleData struct {
	Retrying  []control.ScheduledEvent
	Scheduled []control.ScheduledEvent
	// None is true when the store keeps no schedule.
	None bool
}

func (h *handler) schedulePage(w http.ResponseWriter, r *http.Request) {
	if _, err := params(r); err != nil {
		h.pageFail(w, r, err)
		return
	}
	var d scheduleData
	var err error
	d.Retrying, err = h.insp.Scheduled(r.Context(), modelevent.ScheduleRetry, 200)
	if err == nil {
		d.Scheduled, err = h.insp.Scheduled(r.Context(), modelevent.SchedulePublish, 200)
	}
	if errors.Is(err, control.ErrNoSchedule) {
		d.None, err = true, nil
	}
	if err != nil {
		h.pageFail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "schedule", h.page(r, "schedule", "Schedule", d))
}
