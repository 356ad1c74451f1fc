package admin_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/go-eventbus/eventbus/admin"
	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

// commands counts the commands in the store.
func (e *env) commands() int {
	e.t.Helper()
	cs, err := e.insp.Commands(context.Background(), "", 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(cs)
}

// TestBrowserWithoutJavaScript: with scripts off, the live-refresh and copy controls
// are not shown, and a bulk action asks for confirmation on a page of its own before
// anything is done.
func TestBrowserWithoutJavaScript(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.publish(2)
	b := newBrowser(t, e)
	if _, err := chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	b.open("events?status=poisoned")
	b.until("rows listed", `document.querySelectorAll("#events tr.event").length === 2`)
	if s := b.text(`getComputedStyle(document.getElementById("live")).display + " " + getComputedStyle(document.getElementById("pick-all")).display`); s != "none none" {
		t.Fatalf("controls that need JavaScript are shown: %s", s)
	}
	b.click("#bulk-retry")
	b.until("confirmation page", `document.getElementById("question") !== null`)
	if q := b.text(`document.getElementById("question").textContent`); !strings.Contains(q, "Retry 2 consumed events") {
		t.Fatalf("question: %q", q)
	}
	b.screenshot("confirm")
	if n := e.commands(); n != 0 {
		t.Fatalf("%d commands before confirmation", n)
	}
	b.click("#confirm")
	b.until("back on the events page", `document.getElementById("events") !== null`)
	if n := e.commands(); n != 2 {
		t.Fatalf("%d commands after confirmation, want 2", n)
	}
	// The copy button of an event stays hidden.
	p, _ := e.insp.Events(t.Context(), modelevent.Filter{}, modelevent.ListOptions{Limit: 1})
	b.open("events/" + p.Events[0].ID)
	if s := b.text(`getComputedStyle(document.querySelector("[data-copy]")).display`); s != "none" {
		t.Fatalf("copy button shown without JavaScript: %s", s)
	}
}

// TestBrowserOperatorFeatures: checked rows for a bulk action, Previous and the page
// position, clickable rows, Top errors by shape, chart axes, and every page at 390 px
// without sideways scrolling.
func TestBrowserOperatorFeatures(t *testing.T) {
	e := newEnv(t, admin.Options{RefreshIntervals: []time.Duration{30 * time.Second}})
	e.publish(4) // 12 rows: 4 produced, 4 billing, 4 shipping poisoned
	b := newBrowser(t, e)

	// Pages of 5: the position, Next, then Previous back to the first page.
	b.open("events?limit=5")
	if s := b.text(`document.getElementById("position").textContent`); s != "page 1 · rows 1–5 of 12" {
		t.Fatalf("position: %q", s)
	}
	b.click("#next-page")
	b.until("page 2", `document.getElementById("position").textContent === "page 2 · rows 6–10 of 12"`)
	b.click("#next-page")
	b.until("page 3", `document.getElementById("position").textContent === "page 3 · rows 11–12 of 12"`)
	b.click("#prev-page")
	b.until("page 2 again", `document.getElementById("position").textContent === "page 2 · rows 6–10 of 12"`)
	b.click("#prev-page")
	b.until("page 1 again", `document.getElementById("position").textContent === "page 1 · rows 1–5 of 12" && !location.search.includes("cursor")`)

	// Check two rows of one message and one of another: the replay publishes two.
	p, err := e.insp.Events(t.Context(), modelevent.Filter{}, modelevent.ListOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	byMsg := map[string][]string{}
	var order []string
	for _, ev := range p.Events {
		if byMsg[ev.MessageUUID] == nil {
			order = append(order, ev.MessageUUID)
		}
		byMsg[ev.MessageUUID] = append(byMsg[ev.MessageUUID], ev.ID)
	}
	pick := []string{byMsg[order[0]][0], byMsg[order[0]][1], byMsg[order[1]][0]}
	b.open("events")
	b.until("rows listed", `document.querySelectorAll("#events tr.event").length === 12`)
	if s := b.text(`document.getElementById("sel-count").textContent`); s != "none checked" {
		t.Fatalf("selection count: %q", s)
	}
	for _, id := range pick {
		b.click(fmt.Sprintf(`#events input[value="%s"]`, id))
	}
	b.until("three checked", `document.getElementById("sel-count").textContent === "3 checked"`)
	b.screenshot("events-selected")
	b.click("#sel-replay")
	e.eventually("two replay commands", func() bool { return e.commands() == 2 })
	cs, _ := e.insp.Commands(t.Context(), control.CommandPending, 100)
	for _, c := range cs {
		if c.Kind != control.Replay {
			t.Fatalf("command %+v", c)
		}
	}

	// A click anywhere on a row opens the event.
	id := b.text(`document.querySelector("#events tr.event").dataset.id`)
	b.click(`#events tr.event td:nth-child(5)`)
	b.until("event opened", `location.pathname.endsWith("/events/`+id+`")`)

	// Delete (resolve) a poisoned event from its page: back to the failures list.
	b.open("events?status=poisoned")
	b.click("#events tr.event a.id")
	b.until("event page", `document.getElementById("delete") !== null`)
	gone := b.text(`document.querySelector("h1 .mono").textContent`)
	b.click("#delete")
	b.until("back on the list", `location.search.includes("status=poisoned") && document.getElementById("events") !== null`)
	if _, err := e.insp.Event(t.Context(), gone); err == nil {
		t.Fatalf("event %s not deleted", gone)
	}

	// Top errors group errors that differ only in their numbers (30 rows, one group,
	// where grouping by text made 30 groups of 1); the chart has axes.
	seedErrors(t, e, 30)
	seedHistory(t, e)
	b.open("")
	b.until("top errors", `document.querySelector("#top-errors tbody tr[data-fingerprint]") !== null`)
	first := b.text(`(() => { const r = document.querySelector('#top-errors tbody tr[data-fingerprint^="fraud"]'); return r.dataset.fingerprint + " | " + r.cells[0].textContent + " | " + r.querySelector(".example").textContent; })()`)
	if !strings.HasPrefix(first, "fraud service rejected order <n>: risk model unavailable | 30 | e.g. fraud service rejected order ") {
		t.Fatalf("top error: %q", first)
	}
	if n := b.text(`String(document.querySelector(".chart .xaxis").children.length) + " " + document.querySelector(".chart .yaxis span").textContent + " " + (document.querySelector(".chart g.bar title") || {}).textContent`); !strings.HasPrefix(n, "5 ") || !strings.Contains(n, "UTC: ok ") {
		t.Fatalf("chart axes and tooltips: %q", n)
	}
	b.screenshot("overview-errors")

	// At 390 px nothing scrolls sideways.
	if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"", "events", "events/" + id, "consumers"} {
		b.open(path)
		if w := b.text(`String(document.documentElement.scrollWidth)`); w != "390" {
			t.Errorf("%q at 390 px is %s px wide (%s)", path, w, b.text(`[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > 392).slice(0, 4).map(e => e.tagName + "." + e.className + "#" + e.id + ":" + Math.round(e.getBoundingClientRect().right)).join(" ")`))
		}
		if path == "events" {
			b.screenshot("events-narrow")
		}
	}
}

// seedErrors writes n poisoned rows of the fraud handler whose errors differ only in
// the order number.
func seedErrors(t *testing.T, e *env, n int) {
	t.Helper()
	now := time.Now().UTC()
	var changes []modelevent.Change
	for i := 0; i < n; i++ {
		at := now.Add(-time.Duration(i) * time.Second)
		msg := fmt.Sprintf("fraud service rejected order %d: risk model unavailable", 1000+i)
		changes = append(changes, modelevent.Change{
			Event: modelevent.ModelEvent{MessageUUID: fmt.Sprintf("fraud-%d", i), Direction: modelevent.Consumed, Topic: "orders", Handler: "fraud",
				Backend: "memory", Payload: []byte(`{}`), Status: modelevent.StatusPoisoned, Attempts: 1, LastError: msg, CreatedAt: at, UpdatedAt: at},
			NewAttempts: []modelevent.Attempt{{StartedAt: at, Duration: time.Millisecond, Error: msg}},
		})
	}
	if err := e.store.Write(context.Background(), changes); err != nil {
		t.Fatal(err)
	}
}
