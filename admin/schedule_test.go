package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/admin"
	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestScheduleAPIAndPage: a delayed publish is listed by GET api/scheduled and on the
// Schedule page, rescheduled and cancelled through the API; an event without an entry
// is a 409, an unknown action a 400.
func TestScheduleAPIAndPage(t *testing.T) {
	e := newEnv(t, admin.Options{})
	ctx := context.Background()
	ids, err := e.bus.PublishIn(ctx, time.Hour, "orders", message.NewMessage("", []byte(`{"n":1}`)), message.NewMessage("", []byte(`{"n":2}`)))
	must(t, err)
	status, body := e.do("GET", "api/scheduled?kind=publish", nil)
	var list []control.ScheduledEvent
	if status != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || len(list) != 2 || list[0].Event.Status != modelevent.StatusScheduled {
		t.Fatalf("GET api/scheduled: %d %s", status, body)
	}
	status, body = e.do("GET", "schedule", nil)
	if status != http.StatusOK || !strings.Contains(body, ids[0][:12]) || !strings.Contains(body, "Scheduled publishes") {
		t.Fatalf("schedule page: %d\n%s", status, body)
	}
	later := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	if status, body = e.do("POST", "api/scheduled/"+ids[0]+"/reschedule", url.Values{"at": {later}}); status != http.StatusOK {
		t.Fatalf("reschedule: %d %s", status, body)
	}
	if status, body = e.do("POST", "api/scheduled/"+ids[1]+"/cancel", url.Values{}); status != http.StatusOK {
		t.Fatalf("cancel: %d %s", status, body)
	}
	ev, err := e.insp.Event(ctx, ids[1])
	must(t, err)
	if ev.Status != modelevent.StatusCancelled {
		t.Fatalf("cancelled row: %s", ev.Status)
	}
	if status, _ = e.do("POST", "api/scheduled/"+ids[1]+"/cancel", url.Values{}); status != http.StatusConflict {
		t.Fatalf("cancel twice: %d, want 409", status)
	}
	if status, _ = e.do("POST", "api/scheduled/"+ids[0]+"/explode", url.Values{}); status != http.StatusBadRequest {
		t.Fatalf("unknown action: %d, want 400", status)
	}
}
