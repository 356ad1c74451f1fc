package control_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/modelevent"
)

// stores returns a migrated SQL store per available database.
func stores(t *testing.T) map[string]*modelevent.SQLStore {
	out := map[string]*modelevent.SQLStore{}
	ctx := context.Background()
	open := func(name, driver, dsn string) {
		s, err := modelevent.Open(ctx, driver, dsn)
		if err != nil {
			testenv.RequireService(t, name, err)
			return
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[name] = s
	}
	open("sqlite", "sqlite", "file:"+filepath.Join(t.TempDir(), "c.db"))
	open("postgres", "postgres", testenv.FreshPostgres(t))
	open("mysql", "mysql", testenv.FreshMySQL(t))
	return out
}

func clean(t *testing.T, db *sql.DB) {
	for _, table := range []string{"eventbus_processes", "eventbus_consumer_states", "eventbus_commands"} {
		if _, err := db.Exec("DELETE FROM " + table); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStore(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			clean(t, s.DB())
			ctl := control.NewStore(s)
			ctx := context.Background()

			p := control.Process{ID: "p1", Name: "one", Host: "h", PID: 1, Started: time.Now(), HeartbeatInterval: time.Second,
				Consumers: []control.ConsumerStatus{{Name: "billing", Topic: "orders", State: "running", Processed: 3}}}
			if err := ctl.Heartbeat(ctx, p); err != nil {
				t.Fatal(err)
			}
			p.Consumers[0].Processed = 5
			if err := ctl.Heartbeat(ctx, p); err != nil {
				t.Fatal(err)
			}
			old := control.Process{ID: "p0", Started: time.Now().Add(-time.Hour), HeartbeatInterval: time.Millisecond}
			if err := ctl.Heartbeat(ctx, old); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
			ps, err := ctl.Processes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != 2 || ps[0].ID != "p0" || !ps[0].Gone || ps[1].Gone || ps[1].Consumers[0].Processed != 5 {
				t.Fatalf("processes = %+v", ps)
			}
			if err := ctl.Deregister(ctx, "p0"); err != nil {
				t.Fatal(err)
			}

			// Desired state: a process's own setting wins over the global one.
			must(t, ctl.SetDesired(ctx, "billing", "p1", control.Stopped))
			must(t, ctl.SetDesired(ctx, "shipping", "", control.Stopped))
			d, err := ctl.Desired(ctx, "p1")
			must(t, err)
			if d["billing"] != control.Stopped || d["shipping"] != control.Stopped || len(d) != 2 {
				t.Fatalf("desired = %v", d)
			}
			must(t, ctl.SetDesired(ctx, "billing", "", control.Running)) // everywhere clears p1's own
			d, _ = ctl.Desired(ctx, "p1")
			if d["billing"] != control.Running {
				t.Fatalf("desired after global running = %v", d)
			}
			if err := ctl.SetDesired(ctx, "billing", "", "paused"); err == nil {
				t.Fatal("accepted an unknown state")
			}

			// Commands: exactly one of many racing claimers wins each command.
			var ids []string
			for i := 0; i < 20; i++ {
				c, err := ctl.Enqueue(ctx, control.Command{Kind: control.Retry, EventID: fmt.Sprint(i), Consumer: "billing"}, time.Minute)
				must(t, err)
				ids = append(ids, c.ID)
			}
			_, err = ctl.Enqueue(ctx, control.Command{Kind: control.Retry, Consumer: "nobody"}, time.Minute)
			must(t, err)
			var mu sync.Mutex
			claimed := map[string]string{}
			var wg sync.WaitGroup
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for {
						cs, err := ctl.Claim(ctx, fmt.Sprintf("w%d", w), []string{"billing"}, 3)
						if err != nil {
							t.Error(err)
							return
						}
						if len(cs) == 0 {
							// Done when only the command nobody can run is pending.
							pending, err := ctl.Commands(ctx, control.CommandPending, 100)
							if err != nil {
								t.Error(err)
								return
							}
							if len(pending) <= 1 {
								return
							}
							time.Sleep(time.Millisecond)
							continue
						}
						for _, c := range cs {
							mu.Lock()
							if prev, dup := claimed[c.ID]; dup {
								t.Errorf("command %s claimed by %s and w%d", c.ID, prev, w)
							}
							claimed[c.ID] = c.ClaimedBy
							mu.Unlock()
							must(t, ctl.Finish(ctx, c.ID, "ok", nil))
						}
					}
				}(w)
			}
			wg.Wait()
			if len(claimed) != 20 {
				t.Fatalf("claimed %d of 20", len(claimed))
			}
			c, err := ctl.Command(ctx, ids[0])
			must(t, err)
			if c.Status != control.CommandSucceeded || c.Result != "ok" || c.FinishedAt.IsZero() {
				t.Fatalf("command = %+v", c)
			}
			if _, err := ctl.Command(ctx, "nope"); !errors.Is(err, modelevent.ErrNotFound) {
				t.Fatalf("missing command: %v", err)
			}
			// The command for a consumer nobody runs stays pending, then expires.
			exp, err := ctl.Enqueue(ctx, control.Command{Kind: control.Redrive, EventID: "x", Consumer: "ghost"}, -time.Second)
			must(t, err)
			n, err := ctl.Expire(ctx)
			must(t, err)
			if n != 1 {
				t.Fatalf("expired %d, want 1", n)
			}
			c, _ = ctl.Command(ctx, exp.ID)
			if c.Status != control.CommandExpired || c.Error != `expired: no live process running consumer "ghost" claimed it in time` {
				t.Fatalf("expired command = %+v", c)
			}
			pending, err := ctl.Commands(ctx, control.CommandPending, 10)
			must(t, err)
			if len(pending) != 1 || pending[0].Consumer != "nobody" {
				t.Fatalf("pending = %+v", pending)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
