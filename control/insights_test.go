package control_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

func TestFingerprint(t *testing.T) {
	for _, c := range [][2]string{
		{"fraud service rejected order 42: risk model unavailable", "fraud service rejected order <n>: risk model unavailable"},
		{"fraud service rejected order 7: risk model unavailable", "fraud service rejected order <n>: risk model unavailable"},
		{`user "alice" not found`, "user <q> not found"},
		{"user 'bob' not found", "user <q> not found"},
		{"message 3f2b8c1e-9d4a-4b7e-8f00-1a2b3c4d5e6f timed out after 1.5s", "message <uuid> timed out after <n>s"},
		{"event 01ARZ3NDEKTSV4RRFFQ69G5FAV: conflict", "event <id>: conflict"},
		{"commit deadbeefcafe0042 rejected", "commit <hex> rejected"},
		{"dial tcp 10.0.0.12:5432: connection refused", "dial tcp <n>: connection refused"},
		{"first line 12\nstack trace 99", "first line <n>"},
		{"  many   spaces\t here ", "many spaces here"},
	} {
		if got := control.Fingerprint(c[0]); got != c[1] {
			t.Errorf("Fingerprint(%q) = %q, want %q", c[0], got, c[1])
		}
	}
}

// ErrorStatuses hands out its own copy: a caller changing it changes no one else's.
func TestErrorStatuses(t *testing.T) {
	ss := control.ErrorStatuses()
	want := []modelevent.Status{modelevent.StatusFailed, modelevent.StatusPoisoned, modelevent.StatusRetrying, modelevent.StatusPublishFailed}
	if !slices.Equal(ss, want) {
		t.Fatalf("ErrorStatuses() = %v, want %v", ss, want)
	}
	ss[0] = modelevent.StatusSucceeded
	if got := control.ErrorStatuses(); !slices.Equal(got, want) {
		t.Fatalf("after a caller changed its copy, ErrorStatuses() = %v", got)
	}
}

// ExampleFingerprint shows two errors of one shape.
func ExampleFingerprint() {
	fmt.Println(control.Fingerprint(`order 42 for "alice" rejected`))
	fmt.Println(control.Fingerprint(`order 7 for "bob" rejected`))
	// Output:
	// order <n> for <q> rejected
	// order <n> for <q> rejected
}

// BenchmarkTopErrors measures grouping by fingerprint (control, reading the newest
// TopErrorsScan failing rows) on one SQLite store holding 5000 poisoned rows whose
// errors carry ids.
func BenchmarkTopErrors(b *testing.B) {
	ctx := context.Background()
	store, err := modelevent.Open(ctx, "sqlite", "file:"+filepath.Join(b.TempDir(), "e.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	var changes []modelevent.Change
	for i := 0; i < control.TopErrorsScan; i++ {
		msg := fmt.Sprintf("fraud service rejected order %d: risk model unavailable", i)
		changes = append(changes, modelevent.Change{Event: modelevent.ModelEvent{MessageUUID: fmt.Sprint("m", i), Direction: modelevent.Consumed,
			Topic: "orders", Handler: fmt.Sprint("h", i%5), Backend: "memory", Payload: make([]byte, 100), Status: modelevent.StatusPoisoned,
			Attempts: 1, LastError: msg, CreatedAt: now, UpdatedAt: now}})
	}
	if err := store.Write(ctx, changes); err != nil {
		b.Fatal(err)
	}
	insp := control.NewInspector(store, nil, control.InspectorOptions{})
	b.Run("fingerprint", func(b *testing.B) {
		for b.Loop() {
			if g, _, _, err := insp.TopErrors(ctx, modelevent.Filter{}, 10); err != nil || len(g) != 5 {
				b.Fatal(err, len(g))
			}
		}
	})
}
