package modelevent

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// benchPruneRows is the number of old rows BenchmarkPruneWhileRecording prunes:
// EVENTBUS_BENCH_PRUNE_ROWS, default 100000 (run it with 1000000 by hand).
func benchPruneRows() int {
	if n, err := strconv.Atoi(os.Getenv("EVENTBUS_BENCH_PRUNE_ROWS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// seedOld writes n rows (n/2 bus events: a produced and a consumed row each) recorded
// 30 days ago, through Write in batches of 256 rows.
func seedOld(b *testing.B, s *SQLStore, n int) {
	ctx := context.Background()
	base := time.Now().Add(-30 * 24 * time.Hour)
	batch := make([]Change, 0, 256)
	for i := 0; i < n; i += 2 {
		at := base.Add(time.Duration(i) * time.Millisecond)
		ch := eventChanges(at)
		for j := range ch {
			ch[j].Event.ID = ulid.MustNew(ulid.Timestamp(at), rand.Reader).String()
		}
		batch = append(batch, ch[0], ch[1])
		if len(batch) == cap(batch) || i+2 >= n {
			if err := s.Write(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// recordFor writes new rows (bus events, batches of 256 rows as the recorder's group
// commit makes them) from one goroutine until stop is closed, at most rate rows/s (0:
// full speed), and returns the rows written and the time taken.
func recordFor(b *testing.B, s *SQLStore, stop <-chan struct{}, rate int) (int64, time.Duration) {
	ctx := context.Background()
	start := time.Now()
	var rows int64
	batch := make([]Change, 0, 256)
	for {
		var wait <-chan time.Time
		if rate > 0 {
			wait = time.After(time.Until(start.Add(time.Duration(float64(rows) / float64(rate) * float64(time.Second)))))
		}
		select {
		case <-stop:
			return rows, time.Since(start)
		default:
		}
		if wait != nil {
			select {
			case <-stop:
				return rows, time.Since(start)
			case <-wait:
			}
		}
		batch = batch[:0]
		now := time.Now()
		for len(batch) < cap(batch) {
			ch := eventChanges(now)
			batch = append(batch, ch[0], ch[1])
		}
		if err := s.Write(ctx, batch); err != nil {
			b.Error(err)
			return rows, time.Since(start)
		}
		rows += int64(len(batch))
	}
}

// BenchmarkPruneWhileRecording seeds old rows, then measures the store's recording
// rate (rows/s through Write, one writer, 256-row batches: full speed) alone for
// a few seconds, and again while Prune deletes the old rows at its defaults (500-row
// batches, a pause of four batch durations between them). It reports both rates,
// their ratio (the target is ≥ 0.8), and the pruner's own rate. The run is long: set
// EVENTBUS_BENCH_PRUNE_ROWS (default 100000) to 1000000 by hand.
//
//	EVENTBUS_BENCH_PRUNE_ROWS=1000000 go test -run '^$' -bench PruneWhileRecording -benchtime 1x -timeout 1h ./modelevent
func BenchmarkPruneWhileRecording(b *testing.B) {
	n := benchPruneRows()
	for _, be := range testBackends[:2] {
		b.Run(fmt.Sprintf("%s/rows-%d", be.name, n), func(b *testing.B) {
			s := openStore(b, be.name, be.setup(b), true)
			seedOld(b, s, n)
			const alone = 5 * time.Second
			b.ResetTimer()

			stop := make(chan struct{})
			time.AfterFunc(alone, func() { close(stop) })
			baseRows, baseTook := recordFor(b, s, stop, 0)
			base := float64(baseRows) / baseTook.Seconds()

			stop = make(chan struct{})
			var wg sync.WaitGroup
			var recRows atomic.Int64
			var recTook time.Duration
			wg.Add(1)
			go func() {
				defer wg.Done()
				rows, took := recordFor(b, s, stop, 0)
				recRows.Store(rows)
				recTook = took
			}()
			// EVENTBUS_BENCH_PRUNE_PAUSE overrides the pause between batches, to explore.
			p, _ := time.ParseDuration(os.Getenv("EVENTBUS_BENCH_PRUNE_PAUSE"))
			res, err := s.Prune(context.Background(), PruneOptions{Pause: p, MaxAge: map[Status]time.Duration{StatusSucceeded: 7 * 24 * time.Hour, StatusPublished: 7 * 24 * time.Hour}})
			close(stop)
			wg.Wait()
			if err != nil {
				b.Fatal(err)
			}
			if res.Events != int64(n) {
				b.Fatalf("pruned %d rows, want %d", res.Events, n)
			}
			during := float64(recRows.Load()) / recTook.Seconds()
			b.ReportMetric(base, "rec-rows/s-alone")
			b.ReportMetric(during, "rec-rows/s-pruning")
			b.ReportMetric(during/base, "ratio")
			b.ReportMetric(float64(res.Events)/res.Duration.Seconds(), "pruned-rows/s")
			b.ReportMetric(res.Duration.Seconds(), "prune-s")
		})
	}
}

// BenchmarkSQLiteFileUnderRetention records bus events at a steady rate
// (EVENTBUS_BENCH_RATE rows/s, default 10000: a steady load below the store's ceiling)
// for 30s with retention pruning continuously (rows older than five seconds, every
// second, as the bus does with a short retention), and logs the database file's size
// (with its WAL) every three seconds: it must level off. It runs on a new database
// (auto_vacuum INCREMENTAL, as Open creates it) and on one without auto-vacuum, where
// free pages are only reused.
//
//	go test -run '^$' -bench SQLiteFileUnderRetention -benchtime 1x -v ./modelevent
func BenchmarkSQLiteFileUnderRetention(b *testing.B) {
	rate := 10000
	if n, err := strconv.Atoi(os.Getenv("EVENTBUS_BENCH_RATE")); err == nil && n > 0 {
		rate = n
	}
	for _, mode := range []struct{ name, dsnSuffix string }{{"incremental", ""}, {"none", "?_pragma=auto_vacuum(0)"}} {
		b.Run(mode.name, func(b *testing.B) {
			dir := b.TempDir()
			path := filepath.Join(dir, "events.db")
			s := openStore(b, DialectSQLite, "file:"+path+mode.dsnSuffix, true)
			size := func() int64 {
				var total int64
				for _, f := range []string{path, path + "-wal"} {
					if fi, err := os.Stat(f); err == nil {
						total += fi.Size()
					}
				}
				return total
			}
			const run, keep = 30 * time.Second, 5 * time.Second
			stop := make(chan struct{})
			var rows atomic.Int64
			go func() {
				n, _ := recordFor(b, s, stop, rate)
				rows.Store(n)
			}()
			prunes := make(chan PruneResult, 1)
			pctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				var total PruneResult
				tick := time.NewTicker(time.Second)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						prunes <- total
						return
					case <-tick.C:
					}
					res, err := s.Prune(pctx, PruneOptions{MaxAge: map[Status]time.Duration{StatusSucceeded: keep, StatusPublished: keep}})
					if err != nil && pctx.Err() == nil {
						b.Error(err)
					}
					total.Events += res.Events
					total.FreedPages += res.FreedPages
				}
			}()
			start := time.Now()
			var sizes []string
			for t := 3 * time.Second; t <= run; t += 3 * time.Second {
				time.Sleep(time.Until(start.Add(t)))
				sizes = append(sizes, fmt.Sprintf("%ds:%.1fMB", int(t.Seconds()), float64(size())/1e6))
			}
			close(stop)
			cancel()
			total := <-prunes
			time.Sleep(100 * time.Millisecond)
			b.Logf("%s: %d rows recorded (%.0f/s), %d pruned, %d pages given back; file+wal: %v",
				mode.name, rows.Load(), float64(rows.Load())/run.Seconds(), total.Events, total.FreedPages, sizes)
			b.ReportMetric(float64(rows.Load())/run.Seconds(), "rec-rows/s")
			b.ReportMetric(float64(size())/1e6, "final-MB")
		})
	}
}
