package admin

import (
	"net/http"

	"github.com/go-eventbus/eventbus/control"
)

type managerData struct {
	Processes []control.Process
	Live      int
	Consumers []control.ConsumerView
	Commands  []control.Command
	Pending   int
}

func (h *handler) managerPage(w http.ResponseWriter, r *http.Request) {
	if _, err := params(r); err != nil {
		h.pageFail(w, r, err)
		return
	}
	ctx := r.Context()
	var d managerData
	var err error
	if d.Processes, err = h.insp.Processes(ctx); err != nil {
		h.pageFail(w, r, err)
		return
	}
	for _, p := range d.Processes {
		if !p.Gone {
			d.Live++
		}
	}
	if d.Consumers, err = h.insp.Consumers(ctx); err != nil {
		h.pageFail(w, r, err)
		return
	}
	if d.Commands, err = h.insp.Commands(ctx, "", 30); err != nil {
		h.pageFail(w, r, err)
		return
	}
	for _, c := range d.Commands {
		if !c.Status.Done() {
			d.Pending++
		}
	}
	h.render(w, r, http.StatusOK, "manager", h.page(r, "consumers", "Consumers", d))
}
