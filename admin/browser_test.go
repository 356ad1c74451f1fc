package admin_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/go-eventbus/eventbus/admin"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/modelevent"
)

// chromiumPath is Debian's chromium.
const chromiumPath = "/usr/bin/chromium"

// screenshotsEnv set to 1 makes TestBrowser write docs/screenshots/*.png.
const screenshotsEnv = "EVENTBUS_SCREENSHOTS"

// browser is a headless chromium tab on the console of e.
type browser struct {
	t   *testing.T
	ctx context.Context
	e   *env
}

func newBrowser(t *testing.T, e *env) *browser {
	t.Helper()
	_, err := os.Stat(chromiumPath)
	testenv.RequireService(t, "chromium", err)
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	t.Cleanup(cancel)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	ctx, cancelTimeout := context.WithTimeout(ctx, 50*time.Second)
	t.Cleanup(cancelTimeout)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		testenv.RequireService(t, "chromium", err)
	}
	// Accept every confirm() the console asks.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return &browser{t: t, ctx: ctx, e: e}
}

func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.e.url+path), chromedp.WaitVisible(chromedp.CSS("#main")))
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// until polls a JavaScript boolean expression in the page.
func (b *browser) until(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out waiting for %s (%s): %v", what, expr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *browser) text(expr string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return s
}

// screenshot writes docs/screenshots/name.png when EVENTBUS_SCREENSHOTS=1.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if os.Getenv(screenshotsEnv) != "1" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// TestBrowser drives the console in headless chromium over a real bus: the events
// list, the failed-only filter, an event's detail, a retry that turns it green, and a
// consumer stopped (it processes nothing) and started again from the EventManager.
func TestBrowser(t *testing.T) {
	e := newEnv(t, admin.Options{RefreshIntervals: []time.Duration{time.Second, 5 * time.Second}})
	e.publish(6)
	b := newBrowser(t, e)
	ctx := context.Background()

	// The events list, then failed only in one click.
	b.open("events")
	b.until("rows listed", `document.querySelectorAll("#events tr.event").length === 18`)
	b.until("live refresh shown", `!document.getElementById("live").hidden`)
	b.screenshot("events")
	b.click("#failed-only")
	b.until("only failed rows", `(() => { const rows = [...document.querySelectorAll("#events tr.event")];
		return location.search.includes("status=") && rows.length === 6 && rows.every(r => r.dataset.status === "poisoned"); })()`)

	// An event's detail.
	b.click("#events tr.event a.id")
	b.until("detail shown", `document.getElementById("status") && document.getElementById("status").textContent === "poisoned"`)
	if s := b.text(`document.getElementById("payload").textContent`); !strings.Contains(s, "\"order\": ") {
		t.Fatalf("payload not pretty-printed: %q", s)
	}
	if s := b.text(`document.getElementById("last-error").textContent`); !strings.Contains(s, "<script>") {
		t.Fatalf("last error not shown as text: %q", s)
	}
	if n := b.text(`String(document.querySelectorAll("#attempts tbody tr").length)`); n != "1" {
		t.Fatalf("attempts rows: %s", n)
	}
	b.screenshot("event")

	// Retry it once the carrier is back: the command runs in the bus process and the
	// page shows the new status.
	e.failing.Store(false)
	id := b.text(`document.querySelector("h1 .mono").textContent`)
	b.click("#retry")
	b.until("status succeeded", `document.getElementById("status").textContent === "succeeded"`)
	if ev, _ := e.insp.Event(ctx, id); ev.Status != modelevent.StatusSucceeded || ev.Attempts != 2 {
		t.Fatalf("after retry: %s, %d attempts", ev.Status, ev.Attempts)
	}

	// Stop billing everywhere from the EventManager; it stops processing.
	b.open("consumers")
	b.until("processes shown", `document.querySelectorAll(".process").length === 1`)
	b.screenshot("consumers")
	b.click(`#consumers tr[data-consumer="billing"] button.stop`)
	b.until("billing stopped", `document.querySelector('.process tr[data-consumer="billing"]').dataset.state === "stopped"`)
	billed := e.billed.Load()
	e.publishRows(2, 2) // produced and shipping: billing is stopped
	if got := e.billed.Load(); got != billed {
		t.Fatalf("a stopped consumer processed %d messages", got-billed)
	}
	shipping, _ := e.insp.Count(ctx, modelevent.Filter{Handler: "shipping"})
	if shipping != 8 {
		t.Fatalf("shipping rows = %d, want 8 (it kept running)", shipping)
	}

	// Start it again; it processes again.
	b.click(`#consumers tr[data-consumer="billing"] button.start`)
	b.until("billing running", `document.querySelector('.process tr[data-consumer="billing"]').dataset.state === "running"`)
	e.publish(1)
	e.eventually("billing processes again", func() bool { return e.billed.Load() > billed })

	// The overview draws the rows: the test's, and an hour of older ones.
	seedHistory(t, e)
	b.open("")
	b.until("charts drawn", `document.querySelectorAll(".chart svg rect").length > 0 && document.querySelectorAll("#slowest tbody tr").length >= 2`)
	b.screenshot("overview")

	if os.Getenv(screenshotsEnv) == "1" {
		b.open("events")
		if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		}); err != nil {
			t.Fatal(err)
		}
		b.open(fmt.Sprintf("events/%s", id))
		b.screenshot("event-dark")
	}
}

// seedHistory writes an hour of older rows of two topics, so the overview has a
// history to draw.
func seedHistory(t *testing.T, e *env) {
	t.Helper()
	now := time.Now().UTC()
	var changes []modelevent.Change
	for i := 0; i < 300; i++ {
		at := now.Add(-time.Duration(i%58+1)*time.Minute - time.Duration(i)*time.Second)
		topic, handler := "orders", "billing"
		if i%3 == 0 {
			topic, handler = "payments", "ledger"
		}
		status, errText := modelevent.StatusSucceeded, ""
		if i%7 == 0 || (topic == "payments" && i%58 > 40) {
			status, errText = modelevent.StatusPoisoned, "ledger: deadlock detected"
		}
		changes = append(changes, modelevent.Change{
			Event: modelevent.ModelEvent{MessageUUID: fmt.Sprintf("seed-%d", i), Direction: modelevent.Consumed, Topic: topic, Handler: handler,
				Backend: "memory", Payload: []byte(`{}`), Status: status, Attempts: 1, LastError: errText, CreatedAt: at, UpdatedAt: at},
			NewAttempts: []modelevent.Attempt{{StartedAt: at, Duration: time.Duration(i%20+1) * time.Millisecond, Error: errText}},
		})
	}
	if err := e.store.Write(context.Background(), changes); err != nil {
		t.Fatal(err)
	}
}
