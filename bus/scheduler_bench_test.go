package bus_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/modelevent"
)

// BenchmarkIdempotency measures events/s from Publish to handled on the memory backend
// with a consumer that is idempotent (a look-up of its row and a claim before every
// run) beside one that is not, in the same run, on SQLite and PostgreSQL, durable
// recording (docs/performance.md). cpu-µs/event is this process's CPU time per event.
func BenchmarkIdempotency(b *testing.B) {
	for _, store := range []string{"sqlite", "postgres"} {
		for _, on := range []bool{false, true} {
			name := fmt.Sprintf("%s-idempotent-%v", store, on)
			b.Run(name, func(b *testing.B) { benchIdempotent(b, store, on) })
		}
	}
}

func benchIdempotent(b *testing.B, store string, on bool) {
	cfg := bus.Config{}
	switch store {
	case "sqlite":
		cfg.Store = bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(b.TempDir(), "bench.db")}
	case "postgres":
		cfg.Store = bus.StoreConfig{Driver: "postgres", DSN: testenv.FreshPostgres(b)}
	}
	bb, err := bus.New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer bb.Close()
	var handled atomic.Int64
	if err := bb.HandleWith("bench", "bench", func(ctx context.Context, msg *message.Message) error {
		handled.Add(1)
		return nil
	}, bus.ConsumerOptions{Idempotent: &on}); err != nil {
		b.Fatal(err)
	}
	bustest.Start(b, bb, 10*time.Second)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuSeconds()
	bustest.PublishAll(b, b.N, func(m *message.Message) error { return bb.Publish(context.Background(), "bench", m) })
	bustest.WaitCounts(b, b.N, &handled)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	// CPU time of this process (SQLite included, the PostgreSQL server not) varies
	// less than wall time on a shared machine.
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N)*1e6, "cpu-µs/event")
}

// TestSchedulerIdleCost runs an idle bus on PostgreSQL with one consumer for 5s and
// reports its CPU use and the transactions it ran per second (pg_stat_database): the
// scheduler's look for due work, every poll_interval, beside the control plane's
// heartbeat and command polls (docs/performance.md).
func TestSchedulerIdleCost(t *testing.T) {
	if testing.Short() {
		t.Skip("idles for 10s")
	}
	dsn := testenv.FreshPostgres(t)
	for _, poll := range []time.Duration{200 * time.Millisecond, time.Hour} {
		t.Run(fmt.Sprint("poll-", poll), func(t *testing.T) {
			b := newTestBus(t, bus.Config{Store: bus.StoreConfig{Driver: "postgres", DSN: dsn}, Scheduler: bus.SchedulerConfig{PollInterval: poll}})
			if err := b.Handle("idle", "idle", func(context.Context, *message.Message) error { return nil }); err != nil {
				t.Fatal(err)
			}
			runBus(t, b)
			time.Sleep(500 * time.Millisecond) // the first heartbeat and look
			db := b.Store().(*modelevent.SQLStore).DB()
			xacts := func() int64 {
				var n int64
				if err := db.QueryRow(`SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			x0, c0, w0 := xacts(), cpuSeconds(), time.Now()
			time.Sleep(5 * time.Second) // idling is what is measured
			// pg_stat_database lags by up to its stats interval; the 5s dwarf it.
			x1, c1, wall := xacts(), cpuSeconds(), time.Since(w0).Seconds()
			cpu := (c1 - c0) / wall
			qps := float64(x1-x0-1) / wall
			t.Logf("idle bus, scheduler poll %v: %.2f%% of a CPU, %.1f transactions/s", poll, 100*cpu, qps)
			if cpu > 0.05 {
				t.Errorf("idle bus used %.1f%% of a CPU", 100*cpu)
			}
		})
	}
}
