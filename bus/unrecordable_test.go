package bus_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestUnrecordableMessageIsPoisoned: the store refuses the consumed row of one message
// among 1,000 (a trigger of the database's own, standing for any constraint). That
// message is poisoned with the reason after one handler run, never redelivered; the
// 999 rows committed in the same batches as its row are stored, their handlers run once.
func TestUnrecordableMessageIsPoisoned(t *testing.T) {
	const n = 1000
	poisonTopic := "poison-unrecordable"
	b := newTestBus(t, bus.Config{PoisonTopic: poisonTopic})
	db := b.Store().(*modelevent.SQLStore).DB()
	if _, err := db.Exec(`CREATE TRIGGER forbid_consumed BEFORE INSERT ON eventbus_events
WHEN NEW.direction = 'consumed' AND instr(NEW.payload, 'forbidden') > 0
BEGIN SELECT RAISE(ABORT, 'forbidden payload'); END`); err != nil {
		t.Fatal(err)
	}

	var runs sync.Map // message UUID → *atomic.Int64
	var handled atomic.Int64
	if err := b.Handle("billing", "orders", func(ctx context.Context, msg *message.Message) error {
		c, _ := runs.LoadOrStore(msg.UUID, new(atomic.Int64))
		c.(*atomic.Int64).Add(1)
		handled.Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Watch the poison topic with a raw subscription: a bus consumer of it would try to
	// record the same refused row again.
	sub, err := b.Backend().Subscriber("poison-watch")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	poisoned, err := sub.Subscribe(ctx, poisonTopic)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	runBus(t, b)

	var bad string
	var wg sync.WaitGroup
	for p := 0; p < 8; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < n; i += 8 {
				payload := fmt.Sprintf(`{"order":%d}`, i)
				if i == 500 {
					payload = `{"order":"forbidden"}`
				}
				msg := bus.NewMessage([]byte(payload))
				if i == 500 {
					bad = msg.UUID
				}
				if err := b.Publish(context.Background(), "orders", msg); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()

	select {
	case msg := <-poisoned:
		msg.Ack()
		reason := msg.Metadata.Get(middleware.PoisonReasonKey)
		if msg.UUID != bad || !strings.Contains(reason, "forbidden payload") || !strings.Contains(reason, "cannot be recorded") {
			t.Fatalf("poisoned %s with reason %q; want %s, refused by the store", msg.UUID, reason, bad)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the unrecordable message was not poisoned")
	}
	rows := waitRows(t, b, modelevent.Filter{Direction: modelevent.Consumed, Handler: "billing", Statuses: []modelevent.Status{modelevent.StatusSucceeded}}, n-1)
	if len(rows) != n-1 {
		t.Fatalf("%d succeeded rows, want %d", len(rows), n-1)
	}
	// The poisoned row is kept without the payload the store refused.
	p := waitRows(t, b, modelevent.Filter{MessageUUID: bad, Direction: modelevent.Consumed}, 1)[0]
	if p.Status != modelevent.StatusPoisoned || !strings.Contains(p.LastError, "forbidden payload") || len(p.Payload) != 0 {
		t.Fatalf("row of the refused message: status %s, last error %q, payload %q", p.Status, p.LastError, p.Payload)
	}
	if got := handled.Load(); got != n {
		t.Fatalf("handler ran %d times for %d messages: a message was redelivered", got, n)
	}
	select {
	case msg := <-poisoned:
		t.Fatalf("a second poisoning, of %s", msg.UUID)
	default:
	}
}
