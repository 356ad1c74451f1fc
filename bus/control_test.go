package bus_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestControlAcrossBuses runs two buses on one store, as two processes would, and
// steers them through a standalone Inspector, as the CLI or a console does.
func TestControlAcrossBuses(t *testing.T) {
	dsn := "file:" + filepath.Join(t.TempDir(), "shared.db")
	var failing atomic.Bool
	failing.Store(true)
	newNode := func() *bus.Bus {
		b := newTestBus(t, bus.Config{
			Store:   bus.StoreConfig{Driver: "sqlite", DSN: dsn},
			Retry:   middleware.RetryConfig{MaxRetries: -1},
			Process: bus.ProcessConfig{HeartbeatInterval: 100 * time.Millisecond, CommandPollInterval: 20 * time.Millisecond},
		})
		if err := b.Handle("billing", "orders", func(ctx context.Context, msg *message.Message) error {
			if failing.Load() {
				return errors.New("ledger locked")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		runBus(t, b)
		return b
	}
	a, b := newNode(), newNode()
	store, err := modelevent.Open(context.Background(), "sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	insp := control.NewInspector(store, control.NewStore(store), control.InspectorOptions{CommandTTL: time.Minute})
	ctx := context.Background()

	eventually(t, "both processes registered", func() bool {
		ps, _ := insp.Processes(ctx)
		return len(ps) == 2 && len(ps[0].Consumers) == 1 && len(ps[1].Consumers) == 1
	})

	// Stop everywhere, then start everywhere.
	if err := insp.SetConsumerState(ctx, "billing", "", control.Stopped); err != nil {
		t.Fatal(err)
	}
	eventually(t, "billing stopped in both processes", func() bool {
		ia, _ := a.Consumer("billing")
		ib, _ := b.Consumer("billing")
		return ia.State == control.Stopped && ib.State == control.Stopped
	})
	if err := insp.SetConsumerState(ctx, "billing", b.ProcessID(), control.Running); err != nil {
		t.Fatal(err)
	}
	eventually(t, "billing running in b only", func() bool {
		ia, _ := a.Consumer("billing")
		ib, _ := b.Consumer("billing")
		return ia.State == control.Stopped && ib.State == control.Running
	})
	if err := insp.SetConsumerState(ctx, "billing", "", control.Running); err != nil {
		t.Fatal(err)
	}
	eventually(t, "billing running everywhere", func() bool {
		ia, _ := a.Consumer("billing")
		return ia.State == control.Running
	})
	if err := insp.SetConsumerState(ctx, "nobody", "", control.Stopped); !errors.Is(err, control.ErrUnknownConsumer) {
		t.Fatalf("unknown consumer: %v", err)
	}
	if err := insp.SetConsumerState(ctx, "billing", "no-such-process", control.Stopped); !errors.Is(err, modelevent.ErrNotFound) {
		t.Fatalf("unknown process: %v", err)
	}

	// A poisoned event, retried through a command once the ledger is back.
	if err := a.Publish(ctx, "orders", message.NewMessage("", []byte(`{"id":1}`))); err != nil {
		t.Fatal(err)
	}
	var poisoned modelevent.ModelEvent
	eventually(t, "the event poisoned", func() bool {
		p, _ := store.List(ctx, modelevent.Filter{Statuses: []modelevent.Status{modelevent.StatusPoisoned}}, modelevent.ListOptions{})
		if len(p.Events) == 1 {
			poisoned = p.Events[0]
			return true
		}
		return false
	})
	failing.Store(false)
	out, err := insp.Retry(ctx, poisoned.ID, "")
	if err != nil || out.Command == nil {
		t.Fatalf("retry: %+v, %v", out, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd, err := insp.WaitCommand(wctx, out.Command.ID)
	if err != nil || cmd.Status != control.CommandSucceeded {
		t.Fatalf("command = %+v, %v", cmd, err)
	}
	ev, _ := store.Get(ctx, poisoned.ID)
	if ev.Status != modelevent.StatusSucceeded || ev.Attempts != 2 {
		t.Fatalf("after retry: %s with %d attempts", ev.Status, ev.Attempts)
	}

	// Bulk replay of the produced events, through commands.
	res, err := insp.Bulk(ctx, control.Replay, modelevent.Filter{Direction: modelevent.Produced, Topic: "orders"})
	if err != nil || res.Matched != 1 || res.Enqueued != 1 {
		t.Fatalf("bulk = %+v, %v", res, err)
	}
	cmd, err = insp.WaitCommand(wctx, res.Commands[0])
	if err != nil || cmd.Status != control.CommandSucceeded || cmd.Result == "" {
		t.Fatalf("replay command = %+v, %v", cmd, err)
	}

	// A clean shutdown deregisters.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	ps, _ := insp.Processes(ctx)
	if len(ps) != 1 || ps[0].ID != b.ProcessID() {
		t.Fatalf("after close: %+v", ps)
	}
}

// TestRedriveOnlyReachesThePoisonedConsumer checks a redriven message runs the
// consumer that poisoned it and no other.
func TestRedriveOnlyReachesThePoisonedConsumer(t *testing.T) {
	b := newTestBus(t, bus.Config{Retry: middleware.RetryConfig{MaxRetries: -1}})
	var healthy atomic.Bool
	var auditCalls atomic.Int32
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.Handle("mailer", "signups", func(ctx context.Context, msg *message.Message) error {
		if !healthy.Load() {
			return errors.New("smtp down")
		}
		return nil
	}))
	must(b.Handle("audit", "signups", func(ctx context.Context, msg *message.Message) error { auditCalls.Add(1); return nil }))
	runBus(t, b)
	must(b.Publish(context.Background(), "signups", message.NewMessage("", []byte("ada"))))
	rows := waitRows(t, b, modelevent.Filter{Statuses: []modelevent.Status{modelevent.StatusPoisoned}}, 1)
	healthy.Store(true)
	if _, err := b.Redrive(context.Background(), rows[0].ID); err != nil {
		t.Fatal(err)
	}
	waitRows(t, b, modelevent.Filter{Handler: "mailer", Statuses: []modelevent.Status{modelevent.StatusSucceeded}}, 1)
	time.Sleep(100 * time.Millisecond)
	if auditCalls.Load() != 1 {
		t.Fatalf("audit ran %d times, want 1 (the redrive is for mailer only)", auditCalls.Load())
	}
	succeeded := waitRows(t, b, modelevent.Filter{Handler: "audit"}, 1)
	if _, err := b.Redrive(context.Background(), succeeded[0].ID); err == nil {
		t.Fatal("redrive of a succeeded event was accepted")
	}
}
