package main

import (
	"encoding/json"

	"github.com/go-eventbus/eventbus/modelevent"
)

// jsonEvent is a ModelEvent as --json prints it: a payload that is JSON is embedded
// as JSON under "payload"; any other payload is base64 under "payload_base64" (an
// empty payload is neither).
type jsonEvent struct {
	modelevent.ModelEvent
	Payload       json.RawMessage `json:"payload,omitempty"`
	PayloadBase64 []byte          `json:"payload_base64,omitempty"`
}

func toJSONEvent(e modelevent.ModelEvent) jsonEvent {
	out := jsonEvent{ModelEvent: e}
	switch {
	case len(e.Payload) == 0:
	case json.Valid(e.Payload):
		out.Payload = json.RawMessage(e.Payload)
	default:
		out.PayloadBase64 = e.Payload
	}
	return out
}

// jsonPage is a page of events as events list --json prints it.
type jsonPage struct {
	Events     []jsonEvent `json:"events"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

func toJSONPage(p modelevent.Page) jsonPage {
	out := jsonPage{Events: make([]jsonEvent, 0, len(p.Events)), NextCursor: p.NextCursor}
	for _, e := range p.Events {
		out.Events = append(out.Events, toJSONEvent(e))
	}
	return out
}
