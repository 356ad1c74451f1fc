package bus_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

type shopOrder struct {
	ID    int     `json:"id"`
	Total float64 `json:"total"`
}

type shopCustomer struct {
	Name string `json:"name"`
}

// TestHandleModelOnlySeesItsModel: a shopCustomer published on the orders topic does not
// reach the shoporder handler (it is acked without a row for that consumer), and the typed
// handler learns the message's UUID, object id, change and attempt number.
func TestHandleModelOnlySeesItsModel(t *testing.T) {
	b := newTestBus(t, bus.Config{Retry: middleware.RetryConfig{MaxRetries: 2, InitialInterval: time.Millisecond}})
	var mu sync.Mutex
	var orders []shopOrder
	var deliveries []bus.Delivery
	if err := bus.HandleModel(b, "billing", "orders", func(ctx context.Context, o shopOrder) error {
		d, ok := bus.DeliveryFromContext(ctx)
		if !ok {
			return errors.New("no delivery in the handler's context")
		}
		mu.Lock()
		defer mu.Unlock()
		orders, deliveries = append(orders, o), append(deliveries, d)
		if d.Attempt == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var all sync.Map
	if err := b.Handle("audit", "orders", func(ctx context.Context, msg *message.Message) error {
		all.Store(msg.UUID, true)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runBus(t, b)
	ctx := context.Background()
	customer, err := bus.NewModelMessage(shopCustomer{Name: "ada"})
	if err != nil {
		t.Fatal(err)
	}
	order, err := bus.NewChangeMessage(shopOrder{ID: 42, Total: 9.5}, "42", modelevent.Created)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "orders", customer, order); err != nil {
		t.Fatal(err)
	}
	bustest.WaitRows(t, 10*time.Second, "the order billed", b.Store(), modelevent.Filter{Handler: "billing"}, bustest.OneRowIn(modelevent.StatusSucceeded))
	bustest.WaitRows(t, 10*time.Second, "both audited", b.Store(), modelevent.Filter{Handler: "audit", Statuses: []modelevent.Status{modelevent.StatusSucceeded}},
		func(rows []modelevent.ModelEvent) bool { return len(rows) == 2 })

	mu.Lock()
	defer mu.Unlock()
	for _, o := range orders {
		if o != (shopOrder{ID: 42, Total: 9.5}) {
			t.Fatalf("the shoporder handler got %+v (a message of another model?)", o)
		}
	}
	if len(deliveries) != 2 {
		t.Fatalf("billing ran %d times, want 2 (fail, succeed)", len(deliveries))
	}
	d := deliveries[1]
	if d.UUID != order.UUID || d.ObjectID != "42" || d.Change != modelevent.Created || d.Model != "bus_test.shopOrder" ||
		d.Attempt != 2 || d.Consumer != "billing" || d.Topic != "orders" {
		t.Fatalf("delivery = %+v", d)
	}
	if rows := bustest.Rows(t, b.Store(), modelevent.Filter{Handler: "billing"}); len(rows) != 1 || rows[0].MessageUUID != order.UUID {
		t.Fatalf("billing rows: %+v", rows)
	}
}
