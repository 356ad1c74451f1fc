package admin_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/admin"
	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

func TestOverviewShowsRetention(t *testing.T) {
	e := newEnv(t, admin.Options{})
	must(t, e.store.Write(context.Background(), []modelevent.Change{{Event: modelevent.ModelEvent{
		MessageUUID: "m1", Direction: modelevent.Produced, Topic: "orders", Status: modelevent.StatusPublished, Attempts: 1,
	}}}))

	// Off: no process holds the lease.
	code, body := e.do("GET", "api/overview", nil)
	ov := decode[struct {
		Retention *control.Retention `json:"retention"`
	}](t, body)
	if code != 200 || ov.Retention == nil || ov.Retention.Active || ov.Retention.OldestID == "" {
		t.Fatalf("overview retention = %d %s", code, body)
	}
	if page := mustGet(t, e, ""); !strings.Contains(page, "Retention: off") || !strings.Contains(page, "Oldest row kept:") {
		t.Fatalf("overview page lacks the retention line:\n%s", page)
	}

	// On: a bus process holds the lease and reports its policy.
	report, _ := json.Marshal(control.RetentionReport{
		Policy: control.RetentionPolicy{MaxAge: map[modelevent.Status]time.Duration{
			modelevent.StatusSucceeded: 7 * 24 * time.Hour, modelevent.StatusPoisoned: 36 * time.Hour,
		}, Interval: time.Minute},
		LastRun:    time.Now().Add(-time.Minute),
		LastResult: &modelevent.PruneResult{Events: 1200},
	})
	if ok, err := e.store.AcquireLease(context.Background(), modelevent.RetentionLease, "proc-1", time.Minute, string(report)); err != nil || !ok {
		t.Fatalf("AcquireLease = %v, %v", ok, err)
	}
	page := mustGet(t, e, "")
	for _, want := range []string{"Retention: succeeded 7d, poisoned 1d12h — pruned every 1m0s by proc-1", "(1200 rows)", "Oldest row kept:"} {
		if !strings.Contains(page, want) {
			t.Errorf("overview page lacks %q", want)
		}
	}
	_, body = e.do("GET", "api/overview", nil)
	if ov := decode[struct {
		Retention *control.Retention `json:"retention"`
	}](t, body); !ov.Retention.Active || ov.Retention.Holder != "proc-1" || ov.Retention.Report.Policy.MaxAge[modelevent.StatusSucceeded] != 7*24*time.Hour {
		t.Fatalf("overview retention = %s", body)
	}
}
