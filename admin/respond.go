package admin

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

// apiError is the body of every error response: {"error": "...", "param": "..."}.
type apiError struct {
	Error string `json:"error"`
	// Param names the request parameter at fault, when one is.
	Param string `json:"param,omitempty"`
}

// paramError is a bad request parameter.
type paramError struct {
	param, msg string
}

func (e *paramError) Error() string { return e.param + ": " + e.msg }

func badParam(param, msg string) error { return &paramError{param, msg} }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, param, msg string) {
	writeJSON(w, status, apiError{Error: msg, Param: param})
}

// statusOf maps an error of the Inspector or of the request to an HTTP status.
func statusOf(err error) int {
	var pe *paramError
	switch {
	case errors.As(err, &pe):
		return http.StatusBadRequest
	case errors.Is(err, modelevent.ErrNotFound), errors.Is(err, control.ErrUnknownConsumer):
		return http.StatusNotFound
	case errors.Is(err, control.ErrNoControlPlane), errors.Is(err, control.ErrNoInsights), errors.Is(err, control.ErrNoSchedule):
		return http.StatusNotImplemented
	case errors.Is(err, errConflict), errors.Is(err, control.ErrConflict):
		return http.StatusConflict
	}
	var me *mediaError
	if errors.As(err, &me) {
		return http.StatusUnsupportedMediaType
	}
	return http.StatusInternalServerError
}

var errConflict = errors.New("conflict")

// conflictError is an action refused for the state of its target.
type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }
func (e *conflictError) Is(target error) bool {
	return target == errConflict
}

// fail writes err as a JSON error, logging server-side failures.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	param := ""
	var pe *paramError
	if errors.As(err, &pe) {
		param = pe.param
	}
	msg := err.Error()
	if status == http.StatusInternalServerError {
		h.log.Error("eventbus console: request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	writeError(w, status, param, msg)
}
