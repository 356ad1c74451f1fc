package bus_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/modelevent"
)

func TestRetentionConfig(t *testing.T) {
	path := writeFile(t, "c.yaml", "retention: {succeeded: 7d, published: 1d12h, failed: 720h, max_rows: 1000000}")
	cfg, err := bus.LoadConfigEnv(path, []string{"EVENTBUS_RETENTION_POISONED=30d", "EVENTBUS_RETENTION_BATCH_SIZE=200"})
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Retention
	day := 24 * time.Hour
	if r.Succeeded != 7*day || r.Published != 36*time.Hour || r.Failed != 30*day || r.Poisoned != 30*day || r.MaxRows != 1000000 || r.BatchSize != 200 {
		t.Fatalf("retention = %+v", r)
	}
	if !r.Enabled() || (bus.RetentionConfig{Interval: time.Minute}).Enabled() {
		t.Fatal("Enabled is wrong")
	}
	opts := r.PruneOptions()
	if len(opts.MaxAge) != 4 || opts.MaxAge[modelevent.StatusPublished] != 36*time.Hour || opts.MaxRows != 1000000 {
		t.Fatalf("PruneOptions = %+v", opts)
	}

	for _, c := range []struct{ file, want string }{
		{"retention: {succeeded: 7days}", `retention.succeeded: "7days" is not a duration (want e.g. "250ms", "10s", "1m", "7d"; d is 24h)`},
		{"retention: {kept: 7d}", "retention.kept: unknown key (accepted: batch_size, commands, failed, interval, max_rows, poisoned, publish_failed, published, succeeded)"},
		{"retention: {max_rows: lots}", `retention.max_rows: want a whole number`},
	} {
		if _, err := bus.LoadConfigEnv(writeFile(t, "c.yaml", c.file), nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.file, err, c.want)
		}
	}
	for _, c := range []struct {
		r    bus.RetentionConfig
		want string
	}{
		{bus.RetentionConfig{MaxRows: -1}, "retention.max_rows: must be ≥ 0"},
		{bus.RetentionConfig{Succeeded: time.Hour, BatchSize: 20000}, "retention.batch_size: must be between 1 and 10000"},
		{bus.RetentionConfig{Succeeded: time.Hour, Interval: time.Millisecond}, "retention.interval: must be at least 1s"},
	} {
		if err := (bus.Config{Retention: c.r}).Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.r, err, c.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "1.5d": 36 * time.Hour, "1d12h": 36 * time.Hour, "90s": 90 * time.Second, "0": 0} {
		if got, err := bus.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"d", "7days", "-1d", "1d-2h", "xd", ""} {
		if _, err := bus.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", in)
		}
	}
}

// syncBuffer is a log destination for several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRetentionOneProcessPrunes runs two buses with retention on one store, as two
// processes would: one holds the lease and prunes, the other never does; when the
// first closes, the second takes over.
func TestRetentionOneProcessPrunes(t *testing.T) {
	defer bus.SetRetentionLease(500*time.Millisecond, 100*time.Millisecond)()
	for _, c := range []struct{ driver, dsn string }{
		{"sqlite", "file:" + filepath.Join(t.TempDir(), "shared.db")},
		{"postgres", testenv.FreshPostgres(t)},
	} {
		t.Run(c.driver, func(t *testing.T) {
			ctx := context.Background()
			store, err := modelevent.Open(ctx, c.driver, c.dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			if err := store.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			seed := func(prefix string, n int) {
				old := time.Now().Add(-48 * time.Hour)
				var changes []modelevent.Change
				for i := 0; i < n; i++ {
					changes = append(changes, modelevent.Change{Event: modelevent.ModelEvent{
						ID: ulid.MustNew(ulid.Timestamp(old), rand.Reader).String(), MessageUUID: fmt.Sprintf("%s-%d", prefix, i),
						Direction: modelevent.Produced, Topic: "orders", Status: modelevent.StatusPublished, Attempts: 1, CreatedAt: old,
					}})
				}
				changes = append(changes, modelevent.Change{Event: modelevent.ModelEvent{
					MessageUUID: prefix + "-new", Direction: modelevent.Produced, Topic: "orders", Status: modelevent.StatusPublished, Attempts: 1,
				}})
				if err := store.Write(ctx, changes); err != nil {
					t.Fatal(err)
				}
			}
			count := func() int64 {
				st, err := store.Stats(ctx, modelevent.Filter{})
				if err != nil {
					t.Fatal(err)
				}
				return st.Total
			}
			seed("first", 50)

			logs := map[string]*syncBuffer{}
			newNode := func() *bus.Bus {
				buf := &syncBuffer{}
				b := newTestBus(t, bus.Config{
					Store:     bus.StoreConfig{Driver: c.driver, DSN: c.dsn},
					Retention: bus.RetentionConfig{Published: 24 * time.Hour, Interval: time.Second, BatchSize: 7},
					Logger:    slog.New(slog.NewTextHandler(buf, nil)),
				})
				logs[b.ProcessID()] = buf
				runBus(t, b)
				return b
			}
			a, b := newNode(), newNode()
			eventually(t, "old rows pruned", func() bool { return count() == 1 })
			l, err := store.GetLease(ctx, modelevent.RetentionLease)
			if err != nil || !l.Held(time.Now()) || (l.Holder != a.ProcessID() && l.Holder != b.ProcessID()) {
				t.Fatalf("lease = %+v, %v; want held by one of the buses", l, err)
			}
			holder, other := a, b
			if l.Holder == b.ProcessID() {
				holder, other = b, a
			}
			time.Sleep(300 * time.Millisecond) // a few renewals: the lease stays put
			if strings.Contains(logs[other.ProcessID()].String(), "retention: pruned") {
				t.Fatalf("the process without the lease pruned:\n%s", logs[other.ProcessID()])
			}
			if !strings.Contains(logs[holder.ProcessID()].String(), "retention: pruned") {
				t.Fatalf("the lease holder did not report its prune:\n%s", logs[holder.ProcessID()])
			}

			// The holder closes and releases the lease: the other takes over.
			if err := holder.Close(); err != nil {
				t.Fatal(err)
			}
			seed("second", 20)
			eventually(t, "the other process prunes", func() bool { return count() == 2 })
			l, _ = store.GetLease(ctx, modelevent.RetentionLease)
			if l.Holder != other.ProcessID() {
				t.Fatalf("lease holder %s, want %s", l.Holder, other.ProcessID())
			}
			insp := other.Inspector()
			r, err := insp.Retention(ctx)
			if err != nil || !r.Active || r.Report.Policy.MaxAge[modelevent.StatusPublished] != 24*time.Hour || r.OldestID == "" {
				t.Fatalf("Inspector.Retention = %+v, %v", r, err)
			}
		})
	}
}
