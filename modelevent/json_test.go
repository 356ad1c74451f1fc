package modelevent_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/internal/jsonfmt"
	"github.com/go-eventbus/eventbus/modelevent"
)

// A ModelEvent's JSON: a JSON payload as JSON, other bytes as base64, an empty one as
// neither; times in one layout; history only when read; and decoding gives the event
// back.
func TestModelEventJSON(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 250_000_000, time.UTC)
	base := modelevent.ModelEvent{ID: "01JD0000000000000000000000", MessageUUID: "m1", Direction: modelevent.Consumed, Topic: "orders",
		Handler: "billing", Backend: "memory", Status: modelevent.StatusSucceeded, Attempts: 2, CreatedAt: at, UpdatedAt: at.Add(time.Second)}
	for _, c := range []struct {
		name    string
		payload []byte
		history []modelevent.Attempt
		has     []string
		hasNot  []string
	}{
		{"json", []byte(`{"order":7,"lines":[1,2]}`), nil, []string{`"payload":{"order":7,"lines":[1,2]}`, `"metadata":{}`}, []string{"payload_base64", "history", "duplicates"}},
		{"binary", []byte{0xff, 0, 1}, nil, []string{`"payload_base64":"/wAB"`}, []string{`"payload":`}},
		{"text", []byte("plain text"), nil, []string{`"payload_base64":"cGxhaW4gdGV4dA=="`}, []string{`"payload":`}},
		{"null", []byte("null"), nil, []string{`"payload_base64":"bnVsbA=="`}, []string{`"payload":`}},
		{"empty", nil, []modelevent.Attempt{}, []string{`"history":[]`, `"duplicates":0`}, []string{"payload"}},
		{"history", []byte(`1`), []modelevent.Attempt{{StartedAt: at, Duration: 1500 * time.Microsecond, Error: "boom"}, {StartedAt: at.Add(time.Second)}},
			[]string{`"payload":1`, `"history":[{"started_at":"2026-12-01T12:00:00.250000Z","duration":1500000,"error":"boom"},{"started_at":"2026-12-01T12:00:01.250000Z","duration":0}]`}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := base
			e.Payload, e.History = c.payload, c.history
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range append(c.has, `"created_at":"2026-12-01T12:00:00.250000Z"`, `"updated_at":"2026-12-01T12:00:01.250000Z"`) {
				if !strings.Contains(string(b), s) {
					t.Errorf("%s lacks %s", b, s)
				}
			}
			for _, s := range append(c.hasNot, `"model"`, `"last_error"`, `""`) {
				if strings.Contains(string(b), s) {
					t.Errorf("%s has %s", b, s)
				}
			}
			if problems, _ := jsonfmt.Check(b); len(problems) != 0 {
				t.Errorf("%s: %v", b, problems)
			}
			var back modelevent.ModelEvent
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			e.Metadata = back.Metadata // {} decodes as an empty map
			if !reflect.DeepEqual(back, e) {
				t.Errorf("decoded\n%+v\nwant\n%+v", back, e)
			}
		})
	}
	var e modelevent.ModelEvent
	if err := json.Unmarshal([]byte(`{"payload":{},"payload_base64":"AA=="}`), &e); err == nil {
		t.Error("both payload and payload_base64 decoded")
	}
}

// BenchmarkModelEventJSON encodes an event (JSON payload, 3 metadata keys) with the
// type's own encoding and, for comparison, with encoding/json's default for the
// same struct.
func BenchmarkModelEventJSON(b *testing.B) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 250_000_000, time.UTC)
	e := modelevent.ModelEvent{ID: "01JD0000000000000000000000", MessageUUID: "01a23199-f16b-7b67-9e8f-c431b22c6fa9", Direction: modelevent.Consumed,
		Topic: "orders", Handler: "billing", Backend: "memory", Payload: []byte(`{"order":42,"lines":[{"sku":"a-1","qty":2}],"total":99.5}`),
		Metadata: map[string]string{"correlation_id": "c1", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "x": "y"},
		Status:   modelevent.StatusSucceeded, Attempts: 1, CreatedAt: at, UpdatedAt: at}
	type plain modelevent.ModelEvent
	b.Run("own", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("default", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(plain(e)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
