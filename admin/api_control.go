package admin

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/internal/jsonfmt"
)

func (h *handler) apiProcesses(w http.ResponseWriter, r *http.Request) {
	if _, err := params(r); err != nil {
		h.fail(w, r, err)
		return
	}
	ps, err := h.insp.Processes(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if ps == nil {
		ps = []control.Process{}
	}
	writeJSON(w, http.StatusOK, ps)
}

func (h *handler) apiConsumers(w http.ResponseWriter, r *http.Request) {
	if _, err := params(r); err != nil {
		h.fail(w, r, err)
		return
	}
	cs, err := h.insp.Consumers(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, jsonfmt.List(cs))
}

// consumerActionResponse is the body of POST api/consumers/{name}/{action}.
type consumerActionResponse struct {
	OK       bool          `json:"ok"`
	Consumer string        `json:"consumer"`
	Process  string        `json:"process,omitempty"`
	Desired  control.State `json:"desired"`
}

func (h *handler) apiConsumerAction(w http.ResponseWriter, r *http.Request) {
	v, err := formValues(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := checkParams(v, []string{"process", "next", "confirm"}); err != nil {
		h.fail(w, r, err)
		return
	}
	name := r.PathValue("name")
	if name == "" || len(name) > 191 {
		h.fail(w, r, badParam("name", "a consumer name is 1 to 191 characters"))
		return
	}
	var state control.State
	switch r.PathValue("action") {
	case "stop":
		state = control.Stopped
	case "start":
		state = control.Running
	default:
		h.fail(w, r, badParam("action", "unknown consumer action "+strconv.Quote(clip(r.PathValue("action")))+" (accepted: start, stop)"))
		return
	}
	process := v.Get("process")
	if len(process) > 255 {
		h.fail(w, r, badParam("process", "longer than 255 characters"))
		return
	}
	where := "in every process"
	if process != "" {
		where = "in process " + process
	}
	if h.confirmForm(w, r, v, strings.ToUpper(string(r.PathValue("action")[:1]))+r.PathValue("action")[1:]+" consumer "+name+" "+where+"?") {
		return
	}
	if err := h.insp.SetConsumerState(r.Context(), name, process, state); err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("eventbus console: consumer state", "consumer", name, "process", process, "desired", state)
	if h.redirectForm(w, r, v) {
		return
	}
	writeJSON(w, http.StatusOK, consumerActionResponse{OK: true, Consumer: name, Process: process, Desired: state})
}

func (h *handler) apiCommands(w http.ResponseWriter, r *http.Request) {
	q, err := params(r, []string{"status", "limit"})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := control.CommandStatus(q.Get("status"))
	switch status {
	case "", control.CommandPending, control.CommandClaimed, control.CommandSucceeded, control.CommandFailed, control.CommandExpired:
	default:
		h.fail(w, r, badParam("status", "unknown command status (accepted: pending, claimed, succeeded, failed, expired)"))
		return
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			h.fail(w, r, badParam("limit", "must be a positive integer"))
			return
		}
		limit = min(n, MaxListLimit)
	}
	cs, err := h.insp.Commands(r.Context(), status, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if cs == nil {
		cs = []control.Command{}
	}
	writeJSON(w, http.StatusOK, cs)
}

func (h *handler) apiCommand(w http.ResponseWriter, r *http.Request) {
	if _, err := params(r); err != nil {
		h.fail(w, r, err)
		return
	}
	id, err := pathID(r.PathValue("id"), "id")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	c, err := h.insp.Command(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}
