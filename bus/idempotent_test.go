package bus_test

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/internal/tcpproxy"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/modelevent"
	"github.com/go-eventbus/eventbus/outbox"
)

// TestIdempotentOutboxRelay: 300 events published in transactions from 8 goroutines
// are relayed by the outbox, whose connections to its PostgreSQL database go through a
// TCP proxy cut every few tens of milliseconds: a relay cut off after it published a
// message and before it deleted its outbox row sends the message again (the same UUID,
// payload and metadata) once the database is back. A plain consumer counts those
// second sends; the idempotent consumer runs its handler exactly once per event and
// counts each second send as a duplicate on its row (docs/retries.md).
func TestIdempotentOutboxRelay(t *testing.T) {
	const n = 300
	dsn := testenv.FreshPostgres(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := tcpproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	u.Host = proxy.Addr()
	yes, no := true, false
	b := newTestBus(t, bus.Config{
		Store: bus.StoreConfig{Driver: "postgres", DSN: dsn},
		// The relay reads and deletes its outbox rows through the proxy; the store,
		// the application's transactions and the consumers do not.
		Outbox: bus.OutboxConfig{Enabled: true, DSN: u.String(), Record: bus.OutboxRecordTx,
			Config: outbox.Config{PollInterval: 10 * time.Millisecond, RetryInterval: 5 * time.Millisecond, MaxRetryInterval: 20 * time.Millisecond}},
	})
	var mu sync.Mutex
	runs, sends := map[string]int{}, map[string]int{}
	count := func(m map[string]int) bus.HandlerFunc {
		return func(ctx context.Context, msg *message.Message) error {
			mu.Lock()
			m[msg.UUID]++
			mu.Unlock()
			return nil
		}
	}
	if err := b.HandleWith("mailer", "signups", count(runs), bus.ConsumerOptions{Idempotent: &yes}); err != nil {
		t.Fatal(err)
	}
	if err := b.HandleWith("counter", "signups", count(sends), bus.ConsumerOptions{Idempotent: &no}); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	db := b.Store().(*modelevent.SQLStore).DB()
	ctx := context.Background()
	stop := make(chan struct{})
	cutterDone := make(chan int)
	var cutsSoFar atomic.Int64
	go func() { // cuts the relay off its database until told to stop
		cuts := 0
		defer func() { cutterDone <- cuts }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(100+cuts%5*40) * time.Millisecond):
			}
			proxy.Cut()
			cuts++
			cutsSoFar.Add(1)
			time.Sleep(5 * time.Millisecond)
			proxy.Restore()
		}
	}()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/8+1 && g*(n/8+1)+i < n; i++ {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if err := b.PublishTx(ctx, tx, "signups", message.NewMessage("", []byte(fmt.Sprint(g, i)))); err != nil {
					_ = tx.Rollback()
					t.Error(err)
					return
				}
				if err := tx.Commit(); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	// The cuts stop once publishing is done and at least 10 came: a relay slow enough
	// (under -race, on a loaded machine) that no batch finishes between two cuts would
	// otherwise send the start of the same batch again forever.
	bustest.WaitUntil(t, 30*time.Second, "10 cuts of the relay's connections", func() bool { return cutsSoFar.Load() >= 10 })
	close(stop)
	cuts := <-cutterDone
	delivered := func() (distinct, total int) {
		mu.Lock()
		defer mu.Unlock()
		for _, k := range sends {
			total += k
		}
		return len(sends), total
	}
	bustest.WaitUntil(t, 60*time.Second, "every event sent at least once", func() bool { d, _ := delivered(); return d == n })
	bustest.WaitRows(t, 60*time.Second, "every produced row published", b.Store(),
		modelevent.Filter{Direction: modelevent.Produced, Statuses: []modelevent.Status{modelevent.StatusPublished}},
		func(rows []modelevent.ModelEvent) bool { return len(rows) == n })
	var left int
	bustest.WaitUntil(t, 30*time.Second, "the outbox table empty", func() bool {
		return db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+outbox.DefaultTable).Scan(&left) == nil && left == 0
	})
	_, total := delivered()
	resent := total - n
	dupsOnRows := func() int {
		dups := 0
		for _, r := range bustest.Rows(t, b.Store(), modelevent.Filter{Direction: modelevent.Consumed, Handler: "mailer"}) {
			full, err := b.Store().Get(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			dups += full.Duplicates
		}
		return dups
	}
	bustest.WaitUntil(t, 30*time.Second, "the second sends counted as duplicates", func() bool { return dupsOnRows() >= resent })
	mu.Lock()
	defer mu.Unlock()
	extra := 0
	for _, k := range runs {
		extra += k - 1
	}
	again, most := 0, 0
	for _, k := range sends {
		if k > 1 {
			again++
		}
		most = max(most, k)
	}
	dups := dupsOnRows()
	t.Logf("%d events, %d cuts of the relay's database: %d sends, %d of them again (%d events sent more than once, one %d times); idempotent consumer: %d handler runs, %d extra, %d duplicates on the rows",
		n, cuts, total, resent, again, most, len(runs)+extra, extra, dups)
	if resent == 0 {
		t.Fatalf("the relay sent no message twice in %d cuts: the test shows nothing", cuts)
	}
	if len(runs) != n || extra != 0 || dups != resent {
		t.Fatalf("%d events handled with %d extra runs, want %d and 0 (duplicates %d, want %d)", len(runs), extra, n, dups, resent)
	}
}
