package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/internal/jsonfmt"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestJSONOutput runs every --json command over each store, with a live bus process
// on it, and walks every key of what it prints (jsonfmt.Check): the conventions of
// docs/api.md, the same the console's API follows — no null, no empty string, no zero
// time, times RFC 3339 UTC with microseconds, durations integers, a JSON payload
// under "payload" and other bytes base64 under "payload_base64".
func TestJSONOutput(t *testing.T) {
	for _, store := range testenv.Stores {
		t.Run(store.Driver, func(t *testing.T) { checkCLIJSON(t, store.Driver, store.DSN(t)) })
	}
}

func checkCLIJSON(t *testing.T, driver, dsn string) {
	ctx := context.Background()
	t.Setenv("EVENTBUS_CONFIG", "")
	t.Setenv("EVENTBUS_STORE_DRIVER", driver)
	t.Setenv("EVENTBUS_STORE_DSN", dsn)
	b, err := bus.New(ctx, bus.Config{
		Store:   bus.StoreConfig{Driver: driver, DSN: dsn},
		Retry:   middleware.RetryConfig{MaxRetries: -1},
		Process: bus.ProcessConfig{Name: "worker-1", HeartbeatInterval: 100 * time.Millisecond, CommandPollInterval: 20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var consumed atomic.Int64
	if err := b.Handle("billing", "orders", func(ctx context.Context, msg *message.Message) error { consumed.Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.Handle("shipping", "orders", func(ctx context.Context, msg *message.Message) error {
		consumed.Add(1)
		return errors.New("carrier API timeout")
	}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.Run(ctx) }()
	select {
	case <-b.Running():
	case <-time.After(15 * time.Second):
		t.Fatal("bus did not start")
	}
	for i := range 2 {
		if err := b.Publish(ctx, "orders", message.NewMessage("", []byte(`{"order":`+string(rune('0'+i))+`}`))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.PublishIn(ctx, time.Hour, "orders", message.NewMessage("", []byte(`{"later":true}`))); err != nil {
		t.Fatal(err)
	}
	store, err := modelevent.Open(ctx, driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now()
	if err := store.Write(ctx, []modelevent.Change{
		{Event: modelevent.ModelEvent{MessageUUID: "cli-retry", Direction: modelevent.Consumed, Handler: "ledger", Topic: "orders", Backend: "memory",
			Payload: []byte(`{"order":"r"}`), Status: modelevent.StatusRetrying, Attempts: 1, LastError: "ledger locked", CreatedAt: now, UpdatedAt: now},
			NewAttempts: []modelevent.Attempt{{StartedAt: now, Duration: time.Millisecond, Error: "ledger locked"}}},
		{Event: modelevent.ModelEvent{MessageUUID: "cli-binary", Direction: modelevent.Produced, Topic: "blobs", Backend: "memory",
			Payload: []byte{0xff, 0, 1}, Status: modelevent.StatusPublished, Attempts: 1, CreatedAt: now, UpdatedAt: now}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := store.Schedule(ctx, modelevent.Scheduled{MessageUUID: "cli-retry", Consumer: "ledger", Kind: modelevent.ScheduleRetry, Topic: "orders",
		NextAttemptAt: now.Add(time.Hour), Attempts: 1, LastError: "ledger locked"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, err := store.Stats(ctx, modelevent.Filter{Statuses: []modelevent.Status{modelevent.StatusPoisoned}})
		if err == nil && n.Total == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the poisoned rows: %v %+v", err, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	all, err := store.List(ctx, modelevent.Filter{}, modelevent.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var poisoned string
	for _, e := range all.Events {
		if e.Status == modelevent.StatusPoisoned {
			poisoned = e.ID
		}
	}

	seen := map[string]bool{}
	runJSON := func(args ...string) string {
		t.Helper()
		out, errOut, err := runCLI(t, args...)
		// A bulk --wait whose commands failed exits non-zero after its JSON summary.
		if err != nil && !(strings.Contains(err.Error(), "actions failed") && json.Valid([]byte(out))) {
			t.Fatalf("eventbus %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		problems, keys := jsonfmt.Check([]byte(out))
		for _, p := range problems {
			t.Errorf("eventbus %s: %s", strings.Join(args, " "), p)
		}
		for k := range keys {
			seen[k] = true
		}
		return out
	}
	var cmd struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(runJSON("events", "retry", poisoned, "--wait", "--json")), &cmd); err != nil || cmd.ID == "" {
		t.Fatalf("events retry --json: %v %+v", err, cmd)
	}
	for _, args := range [][]string{
		{"events", "list", "--json"}, {"events", "list", "--status", "poisoned", "--limit", "1", "--json"}, {"events", "list", "--topic", "nothing", "--json"},
		{"processes", "--json"}, {"consumers", "list", "--json"}, {"commands", "--json"}, {"commands", "show", cmd.ID, "--json"},
		{"migrate", "--status", "--json"}, {"retrying", "--json"}, {"scheduled", "--json"},
		{"events", "replay", "--topic", "nothing", "--yes", "--json"},
		{"events", "retry", "--status", "poisoned", "--handler", "shipping", "--yes", "--json"},
		{"events", "retry", "--status", "poisoned", "--handler", "shipping", "--yes", "--wait", "--json"},
		{"events", "prune", "--older-than", "1h", "--dry-run", "--json"},
	} {
		runJSON(args...)
	}
	for _, e := range all.Events {
		out := runJSON("events", "show", e.ID, "--json")
		var back modelevent.ModelEvent
		if err := json.Unmarshal([]byte(out), &back); err != nil || back.ID != e.ID || back.History == nil {
			t.Errorf("events show %s --json does not decode to the event with its history: %v\n%s", e.ID, err, out)
		}
	}
	for _, k := range []string{"events.created_at", "events.updated_at", "events.payload", "events.payload_base64", "events.metadata",
		"history.started_at", "history.duration", "started_at", "last_seen", "consumers.last_message_at", "last_message_at",
		"claimed_at", "finished_at", "expires_at", "applied_at", "next_attempt_at", "event.payload",
		"matched", "errors", "commands", "command_errors", "succeeded", "by_status", "duration"} {
		if !seen[k] {
			t.Errorf("no --json output had %q", k)
		}
	}
}
