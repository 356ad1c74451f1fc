package bus_test

import (
	"context"
	"slices"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

type changedOrder struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func (changedOrder) EventModel() string { return "shop.Order" }

func TestPublishChangeFillsColumns(t *testing.T) {
	b := newTestBus(t, bus.Config{})
	got := make(chan bus.Delivery, 8)
	if err := b.Handle("audit", "shop.orders", func(ctx context.Context, msg *message.Message) error {
		d, _ := bus.DeliveryFromContext(ctx)
		got <- d
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	ctx := context.Background()
	for _, c := range []struct {
		id     string
		change modelevent.ChangeType
	}{{"42", modelevent.Created}, {"7", modelevent.Created}, {"42", modelevent.Updated}, {"42", modelevent.Deleted}} {
		msg, err := bus.NewChangeMessage(changedOrder{ID: c.id, Status: "new"}, c.id, c.change)
		if err == nil {
			err = b.Publish(ctx, "shop.orders", msg)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if c := <-got; c.Model != "shop.Order" || c.ObjectID == "" || c.Change == "" {
		t.Fatalf("consumed metadata = %+v", c)
	}
	// "Every event about order 42": 3 produced and 3 consumed rows, newest first (the
	// memory backend does not keep the order of consumption).
	rows := waitRows(t, b, modelevent.Filter{Model: "shop.Order", ObjectID: "42"}, 6)
	if len(rows) != 6 {
		t.Fatalf("order 42 has %d rows, want 6", len(rows))
	}
	want := map[modelevent.Direction][]modelevent.ChangeType{}
	for _, r := range rows {
		want[r.Direction] = append(want[r.Direction], r.Change)
	}
	for _, d := range []modelevent.Direction{modelevent.Produced, modelevent.Consumed} {
		w := []modelevent.ChangeType{modelevent.Deleted, modelevent.Updated, modelevent.Created}
		if d == modelevent.Consumed {
			slices.Sort(want[d])
			slices.Sort(w)
		}
		if !slices.Equal(want[d], w) {
			t.Errorf("%s changes of order 42 = %v, want %v", d, want[d], w)
		}
	}
	if rows := waitRows(t, b, modelevent.Filter{ObjectID: "7", Direction: modelevent.Consumed}, 1); rows[0].Change != modelevent.Created || rows[0].Handler != "audit" {
		t.Fatalf("order 7 consumed row = %+v", rows[0])
	}
}

func TestChangeMessage(t *testing.T) {
	msg, err := bus.NewChangeMessage(changedOrder{ID: "9"}, "9", modelevent.Updated)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Metadata.Get(modelevent.MetadataModel) != "shop.Order" || msg.Metadata.Get(modelevent.MetadataObjectID) != "9" ||
		msg.Metadata.Get(modelevent.MetadataChange) != "updated" || msg.Metadata.Get(modelevent.MetadataKey) != "9" {
		t.Fatalf("metadata = %v", msg.Metadata)
	}
	if _, err := bus.NewChangeMessage(changedOrder{}, "", modelevent.Created); err == nil {
		t.Error("empty object id: no error")
	}
	if _, err := bus.NewChangeMessage(changedOrder{}, "1", ""); err == nil {
		t.Error("empty change: no error")
	}
}
