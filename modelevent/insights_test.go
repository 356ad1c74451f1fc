package modelevent

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestInsights(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *SQLStore) {
		ctx := context.Background()
		base := time.Now().Add(-10 * time.Minute).Truncate(time.Minute).UTC()
		var changes []Change
		for i := 0; i < 6; i++ {
			c := consumed(fmt.Sprintf("m%d", i), "billing", StatusSucceeded, 1, "")
			c.Event.CreatedAt = base.Add(time.Duration(i%3) * time.Minute)
			c.NewAttempts = []Attempt{{StartedAt: c.Event.CreatedAt, Duration: 10 * time.Millisecond}}
			changes = append(changes, c)
		}
		for i := 0; i < 3; i++ {
			c := consumed(fmt.Sprintf("f%d", i), "shipping", StatusPoisoned, 2, "carrier down")
			c.Event.CreatedAt = base.Add(time.Minute)
			c.NewAttempts = []Attempt{
				{StartedAt: c.Event.CreatedAt, Duration: 300 * time.Millisecond, Error: "carrier down"},
				{StartedAt: c.Event.CreatedAt, Duration: 100 * time.Millisecond, Error: "carrier down"},
			}
			changes = append(changes, c)
		}
		c := consumed("g0", "shipping", StatusFailed, 1, "other")
		c.Event.CreatedAt = base
		changes = append(changes, c)
		mustWrite(t, s, changes...)

		pts, err := s.Timeline(ctx, Filter{Since: base.Add(-time.Minute)}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, p := range pts {
			got[fmt.Sprintf("%d/%s/%s", p.Start.Sub(base)/time.Minute, p.Topic, p.Status)] += p.Count
		}
		want := map[string]int64{"0/orders/succeeded": 2, "1/orders/succeeded": 2, "2/orders/succeeded": 2, "1/orders/poisoned": 3, "0/orders/failed": 1}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("timeline = %v, want %v", got, want)
		}
		if _, err := s.Timeline(ctx, Filter{}, time.Minute); err == nil {
			t.Fatal("timeline without Since accepted")
		}
		if _, err := s.Timeline(ctx, Filter{Since: base.Add(-time.Hour * 1000)}, time.Second); err == nil {
			t.Fatal("timeline of too many buckets accepted")
		}

		slow, err := s.SlowestHandlers(ctx, base.Add(-time.Minute), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(slow) != 2 || slow[0].Handler != "shipping" || slow[0].Avg != 200*time.Millisecond || slow[0].Max != 300*time.Millisecond || slow[0].Errors != 6 || slow[1].Attempts != 6 {
			t.Fatalf("slowest = %+v", slow)
		}
	})
}
