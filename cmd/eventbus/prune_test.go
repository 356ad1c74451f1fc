package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/go-eventbus/eventbus/modelevent"
)

func TestEventsPrune(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dsn := "file:" + filepath.Join(dir, "events.db")
	cfgPath := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfgPath, []byte("store: {driver: sqlite, dsn: \""+dsn+"\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := modelevent.Open(ctx, "sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var changes []modelevent.Change
	for i, c := range []struct {
		age    time.Duration
		status modelevent.Status
	}{{10 * 24 * time.Hour, modelevent.StatusSucceeded}, {10 * 24 * time.Hour, modelevent.StatusPoisoned}, {time.Hour, modelevent.StatusSucceeded}} {
		at := time.Now().Add(-c.age)
		changes = append(changes, modelevent.Change{Event: modelevent.ModelEvent{
			ID: ulid.MustNew(ulid.Timestamp(at), rand.Reader).String(), MessageUUID: fmt.Sprint("m", i), Direction: modelevent.Consumed,
			Handler: "h", Topic: "orders", Status: c.status, Attempts: 1, CreatedAt: at,
		}})
	}
	if err := store.Write(ctx, changes); err != nil {
		t.Fatal(err)
	}
	total := func() int64 {
		st, err := store.Stats(ctx, modelevent.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		return st.Total
	}
	runPrune := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, append([]string{"events", "prune", "--config", cfgPath}, args...), &out, &errOut)
		return out.String() + errOut.String(), err
	}

	out, err := runPrune("--older-than", "7d", "--dry-run")
	if err != nil || !strings.Contains(out, "would delete 2 events") || total() != 3 {
		t.Fatalf("dry run: %v\n%s(rows left %d)", err, out, total())
	}
	out, err = runPrune("--older-than", "7d", "--status", "poisoned")
	if err != nil || !strings.Contains(out, "deleted 1 events") || !strings.Contains(out, "poisoned        1") || total() != 2 {
		t.Fatalf("prune poisoned: %v\n%s(rows left %d)", err, out, total())
	}
	out, err = runPrune("--older-than", "7d", "--json")
	if err != nil || !strings.Contains(out, `"events": 1`) || total() != 1 {
		t.Fatalf("prune: %v\n%s(rows left %d)", err, out, total())
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--older-than: required"},
		{[]string{"--older-than", "soon"}, `--older-than: "soon" is not a positive duration`},
		{[]string{"--older-than", "7d", "--status", "done"}, `--status: "done" is not a status`},
		{[]string{"--status", "failed"}, "--status: needs --older-than"},
		{[]string{"--older-than", "7d", "--batch-size", "0"}, "--batch-size: 0 is out of range"},
		{[]string{"--max-rows", "-3"}, "--max-rows: must be ≥ 0"},
		{[]string{"--older-than", "7d", "--commands", "x"}, `--commands: "x" is not a positive duration`},
	} {
		_, err := runPrune(c.args...)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want a usage error with %q", c.args, err, c.want)
		}
	}
}
