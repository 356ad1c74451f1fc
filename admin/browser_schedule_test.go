package admin_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/admin"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestBrowserSchedule drives the Schedule page in headless chromium: scheduled retries
// (one of them held by a process, which has no buttons) and delayed publishes are
// listed soonest first; cancelling a delayed publish from the page (its confirm()
// accepted) removes its row and leaves the event cancelled. With EVENTBUS_SCREENSHOTS=1
// it writes docs/screenshots/schedule.png.
func TestBrowserSchedule(t *testing.T) {
	e := newEnv(t, admin.Options{})
	b := newBrowser(t, e)
	ctx := context.Background()
	now := time.Now()
	retries := []struct {
		consumer, topic, err string
		attempts             int
		in                   time.Duration
	}{
		{"inventory", "orders", "inventory: reserve sku 1042: connection refused", 2, -time.Second}, // due, claimed below
		{"ledger", "payments", "ledger: deadlock detected", 1, 40 * time.Second},
		{"fraud-check", "orders", "fraud service rejected order 1029: risk model unavailable", 3, 4 * time.Minute},
		{"ledger", "payments", "ledger: deadlock detected", 2, 12 * time.Minute},
	}
	for i, r := range retries {
		uuid := fmt.Sprintf("sched-retry-%d", i)
		at := now.Add(-time.Duration(r.attempts) * time.Minute)
		must(t, e.store.Write(ctx, []modelevent.Change{{
			Event: modelevent.ModelEvent{MessageUUID: uuid, Direction: modelevent.Consumed, Handler: r.consumer, Topic: r.topic, Backend: "memory",
				Payload: []byte(`{}`), Status: modelevent.StatusRetrying, Attempts: r.attempts, LastError: r.err, CreatedAt: at, UpdatedAt: at},
			NewAttempts: []modelevent.Attempt{{StartedAt: at, Duration: 3 * time.Millisecond, Error: r.err}},
		}}))
		must(t, e.store.Schedule(ctx, modelevent.Scheduled{MessageUUID: uuid, Consumer: r.consumer, Kind: modelevent.ScheduleRetry,
			Topic: r.topic, NextAttemptAt: now.Add(r.in), Attempts: r.attempts, LastError: r.err}))
	}
	// A process (of another host: no bus here runs inventory) holds the due one.
	claimed, _, err := e.store.ClaimDue(ctx, "vm-7-9QX2TB", []string{"inventory"}, 0, 10, time.Hour)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("ClaimDue = %v, %v", claimed, err)
	}
	var ids []string
	for i, in := range []time.Duration{20 * time.Minute, 2 * time.Hour, 26 * time.Hour} {
		msg := message.NewMessage("", []byte(fmt.Sprintf(`{"reminder":%d}`, i)))
		msg.Metadata.Set(modelevent.MetadataModel, "shop.Cart")
		got, err := e.bus.PublishIn(ctx, in, "reminders", msg)
		must(t, err)
		ids = append(ids, got...)
	}

	b.open("schedule")
	b.until("the rows listed", `document.querySelectorAll("#retrying tbody tr[data-event]").length == 4 && document.querySelectorAll("#scheduled tbody tr[data-event]").length == 3`)
	// Soonest first; the held entry is due again when its claim lapses (in an hour).
	if got := b.text(`Array.from(document.querySelectorAll("#retrying tbody tr")).map(r => r.cells[2].textContent).join(",")`); got != "ledger,fraud-check,ledger,inventory" {
		t.Fatalf("retries in the order %q", got)
	}
	last := `document.querySelectorAll("#retrying tbody tr")[3]`
	if got := b.text(last + `.textContent`); !contains(got, "inventory", "vm-7-9QX2TB") || strings.Contains(got, "vm-7-9QX2TB/") {
		t.Fatalf("the held retry's row = %q, want the holding process's id (without its claim token)", got)
	}
	if n := b.text(`String(` + last + `.querySelectorAll("button").length)`); n != "0" {
		t.Fatalf("the held retry has %s buttons, want none", n)
	}
	b.screenshot("schedule")

	// Cancel the soonest delayed publish from the page.
	b.click(`#scheduled tbody tr[data-event="` + ids[0] + `"] button.cancel`)
	b.until("the cancelled publish gone", `document.querySelectorAll("#scheduled tbody tr[data-event]").length == 2`)
	ev, err := e.insp.Event(ctx, ids[0])
	must(t, err)
	if ev.Status != modelevent.StatusCancelled {
		t.Fatalf("cancelled publish: status %s", ev.Status)
	}
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
