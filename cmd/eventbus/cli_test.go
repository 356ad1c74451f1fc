package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/modelevent"
)

// runCLI runs the CLI in this process and returns its stdout and stderr.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// --help prints the usage on stdout (for a pager or grep) and nothing on stderr; a
// bad flag is one line on stderr (printed by main), no usage dump.
func TestHelpOnStdout(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"events", "--help"}, {"events", "list", "--help"}, {"events", "retry", "-h"},
		{"consumers", "stop", "--help"}, {"bench", "--help"}, {"migrate", "--help"}, {"serve", "--help"}, {"completion", "--help"}} {
		out, errOut, err := runCLI(t, args...)
		if (err != nil && !errors.Is(err, flag.ErrHelp)) || !strings.Contains(out, "Usage: eventbus") || errOut != "" {
			t.Errorf("eventbus %s: err %v, stdout %q, stderr %q", strings.Join(args, " "), err, out, errOut)
		}
	}
	out, errOut, err := runCLI(t, "events", "list", "--bogus")
	var u usageError
	if !errors.As(err, &u) || out != "" || errOut != "" || !strings.Contains(err.Error(), "-bogus") || !strings.Contains(err.Error(), "--help") {
		t.Errorf("bad flag: err %v, stdout %q, stderr %q", err, out, errOut)
	}
}

// version prints more than "dev": the Go version at least, and the module version or
// VCS revision when the build info has them.
func TestVersionFromBuildInfo(t *testing.T) {
	out, _, err := runCLI(t, "version")
	if err != nil || !strings.HasPrefix(out, "eventbus ") || !strings.Contains(out, "go1.") {
		t.Fatalf("version: %v %q", err, out)
	}
}

// Commands that read a store refuse a SQLite file that does not exist instead of
// creating an empty one.
func TestNoStoreFound(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("EVENTBUS_CONFIG", "")
	for _, args := range [][]string{{"events", "list"}, {"events", "show", "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, {"processes"}, {"consumers", "list"}, {"commands"},
		{"events", "retry", "--status", "poisoned", "--yes"}, {"events", "prune", "--older-than", "1h"}} {
		_, _, err := runCLI(t, args...)
		if !errors.Is(err, errNoStore) || !strings.Contains(err.Error(), filepath.Join(dir, "eventbus.db")) || !strings.Contains(err.Error(), "EVENTBUS_STORE_DSN") {
			t.Errorf("eventbus %s: %v", strings.Join(args, " "), err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "eventbus.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a read command created eventbus.db: %v", err)
	}
}

// --json prints a JSON payload as JSON and other bytes as base64 under payload_base64.
func TestJSONPayloads(t *testing.T) {
	db := filepath.Join(t.TempDir(), "e.db")
	t.Setenv("EVENTBUS_CONFIG", "")
	t.Setenv("EVENTBUS_STORE_DSN", "file:"+db)
	ctx := context.Background()
	store, err := modelevent.Open(ctx, "sqlite", "file:"+db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var changes []modelevent.Change
	for i, p := range [][]byte{[]byte(`{"order":7}`), {0xff, 0x00, 0x01}} {
		changes = append(changes, modelevent.Change{Event: modelevent.ModelEvent{MessageUUID: "m" + string(rune('0'+i)), Direction: modelevent.Produced,
			Topic: "orders", Backend: "memory", Payload: p, Status: modelevent.StatusPublished, Attempts: 1, CreatedAt: now.Add(time.Duration(i) * time.Second), UpdatedAt: now}})
	}
	if err := store.Write(ctx, changes); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "events", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Events []map[string]json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Events) != 2 {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	bin, js := page.Events[0], page.Events[1] // newest first
	var compact bytes.Buffer
	_ = json.Compact(&compact, js["payload"])
	if compact.String() != `{"order":7}` || js["payload_base64"] != nil {
		t.Errorf("JSON payload: %s / %s", js["payload"], js["payload_base64"])
	}
	if bin["payload"] != nil || string(bin["payload_base64"]) != `"`+base64.StdEncoding.EncodeToString([]byte{0xff, 0, 1})+`"` {
		t.Errorf("binary payload: %s / %s", bin["payload"], bin["payload_base64"])
	}
	var id string
	_ = json.Unmarshal(js["id"], &id)
	out, _, err = runCLI(t, "events", "show", id, "--json")
	if err != nil || !strings.Contains(out, `"payload": {`) {
		t.Fatalf("show --json: %v\n%s", err, out)
	}
	// Every command that prints a table has --json.
	for _, args := range [][]string{{"processes", "--json"}, {"consumers", "list", "--json"}, {"commands", "--json"}, {"migrate", "--status", "--json"}} {
		out, _, err := runCLI(t, args...)
		if err != nil || !json.Valid([]byte(out)) {
			t.Errorf("eventbus %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// Completion answers from the commands table and each command's --help.
func TestCompletion(t *testing.T) {
	for _, c := range []struct {
		words []string
		want  string
	}{
		{[]string{"ev"}, "events\n"},
		{[]string{"events", "re"}, "redrive\nreplay\nretry\n"},
		{[]string{"events", "retry", "--wa"}, "--wait\n"},
		{[]string{"events", "list", "--status", "poi"}, "poisoned\n"},
		{[]string{"consumers", "stop", "--pro"}, "--process\n"},
		{[]string{"bench", "--mo"}, "--modes\n"},
	} {
		out, _, err := runCLI(t, append([]string{"__complete"}, c.words...)...)
		if err != nil || out != c.want {
			t.Errorf("complete %q = %q, %v; want %q", c.words, out, err, c.want)
		}
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		out, _, err := runCLI(t, "completion", sh)
		if err != nil || !strings.Contains(out, "eventbus __complete") {
			t.Errorf("completion %s: %v %q", sh, err, out)
		}
	}
}
