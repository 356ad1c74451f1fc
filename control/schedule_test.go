package control_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestScheduledReadsRowsOnce: Scheduled reads the rows of the delayed publishes in one
// GetMany (a retry's entry names no row: one List each), and lists what reading each
// entry's rows by message and consumer lists.
func TestScheduledReadsRowsOnce(t *testing.T) {
	for name, sql := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := &countingStore{SQLStore: sql}
			insp := control.NewInspector(s, nil, control.InspectorOptions{})
			soon := time.Now().Add(time.Hour)
			var entries []modelevent.Scheduled
			for i := range 3 {
				m := watermill.NewUUID()
				id := write(t, s, modelevent.ModelEvent{MessageUUID: m, Direction: modelevent.Produced, Topic: "later", Status: modelevent.StatusScheduled,
					Payload: []byte{byte('a' + i)}})[0]
				entries = append(entries, modelevent.Scheduled{MessageUUID: m, Kind: modelevent.SchedulePublish, EventID: id, Topic: "later",
					NextAttemptAt: soon.Add(time.Duration(i) * time.Minute)})
			}
			// A delayed publish whose row is gone, and a scheduled retry of a consumed row.
			entries = append(entries, modelevent.Scheduled{MessageUUID: watermill.NewUUID(), Kind: modelevent.SchedulePublish,
				EventID: "01ARZ3NDEKTSV4RRFFQ69G5FAV", Topic: "later", NextAttemptAt: soon.Add(4 * time.Minute)})
			m := watermill.NewUUID()
			write(t, s,
				modelevent.ModelEvent{MessageUUID: m, Direction: modelevent.Produced, Topic: "orders", Status: modelevent.StatusPublished, Attempts: 1},
				modelevent.ModelEvent{MessageUUID: m, Direction: modelevent.Consumed, Topic: "orders", Handler: "billing", Status: modelevent.StatusRetrying, Attempts: 1, LastError: "boom"})
			entries = append(entries, modelevent.Scheduled{MessageUUID: m, Consumer: "billing", Kind: modelevent.ScheduleRetry, Topic: "orders",
				NextAttemptAt: soon.Add(5 * time.Minute), Attempts: 1, LastError: "boom"})
			for _, e := range entries {
				must(t, sql.Schedule(ctx, e))
			}

			// What Scheduled listed when it read every entry's rows on its own.
			list, err := sql.ListScheduled(ctx, "", 100)
			if err != nil || len(list) != len(entries) {
				t.Fatalf("ListScheduled: %d entries, %v", len(list), err)
			}
			var want []control.ScheduledEvent
			for _, e := range list {
				se := control.ScheduledEvent{Scheduled: e}
				page, err := sql.List(ctx, modelevent.Filter{MessageUUID: e.MessageUUID, Handler: e.Consumer}, modelevent.ListOptions{Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range page.Events {
					if ev.Handler == e.Consumer {
						se.Event = ev
					}
				}
				want = append(want, se)
			}
			if want[0].Event.ID != entries[0].EventID || want[3].Event.ID != "" || want[4].Event.Handler != "billing" {
				t.Fatalf("the rows by message and consumer: %+v", want)
			}

			s.reads()
			got, err := insp.Scheduled(ctx, "", 100)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Scheduled =\n%+v\nwant\n%+v", got, want)
			}
			if g, gm, l := s.reads(); g != 0 || gm != 1 || l != 1 {
				t.Fatalf("Scheduled of 4 delayed publishes and 1 retry read %d Get, %d GetMany, %d List; want one GetMany and one List", g, gm, l)
			}
			got, err = insp.Scheduled(ctx, modelevent.ScheduleRetry, 100)
			if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], want[4]) {
				t.Fatalf("Scheduled(retry) = %+v, %v", got, err)
			}
			if _, gm, l := s.reads(); gm != 0 || l != 1 {
				t.Fatalf("Scheduled of 1 retry read %d GetMany, %d List", gm, l)
			}
		})
	}
}
