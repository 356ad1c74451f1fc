package memory

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func publishN(t *testing.T, b *Backend, topic string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := b.Publisher().Publish(topic, message.NewMessage(fmt.Sprint(i), nil)); err != nil {
			t.Error(err)
		}
	}
}

// subscribe subscribes consumer c of b to topic t.
func subscribe(t *testing.T, b *Backend) (message.Subscriber, <-chan *message.Message) {
	t.Helper()
	sub, err := b.Subscriber("c")
	if err != nil {
		t.Fatal(err)
	}
	out, err := sub.Subscribe(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	return sub, out
}

// receive takes n messages from out, acking each, and returns their UUIDs; a message
// received twice fails the test.
func receive(t *testing.T, out <-chan *message.Message, n int) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case m := <-out:
			if got[m.UUID] {
				t.Fatalf("message %s received twice", m.UUID)
			}
			got[m.UUID] = true
			m.Ack()
		case <-timeout:
			t.Fatalf("received %d of %d messages", len(got), n)
		}
	}
	return got
}

// publishing publishes n messages on a goroutine and counts those published.
func publishing(t *testing.T, b *Backend, from, n int) (published *atomic.Int64, done chan struct{}) {
	published, done = &atomic.Int64{}, make(chan struct{})
	go func() {
		defer close(done)
		for i := from; i < from+n; i++ {
			if err := b.Publisher().Publish("t", message.NewMessage(fmt.Sprint(i), nil)); err != nil {
				t.Error(err)
			}
			published.Add(1)
		}
	}()
	return published, done
}

// publishBlocked publishes n messages to consumer c, which takes none until a publisher
// waits for room with at most atMost of them published, then takes all n from out.
func publishBlocked(t *testing.T, b *Backend, out <-chan *message.Message, from, n, atMost int) {
	t.Helper()
	published, done := publishing(t, b, from, n)
	g := groupOf(b)
	waitFor(t, "a publisher waiting for room", func() bool { return g.waiters.Load() == 1 })
	if p := published.Load(); p > int64(atMost) {
		t.Fatalf("%d messages published to a consumer that took none, want at most %d", p, atMost)
	}
	receive(t, out, n)
	<-done
}

// groupOf returns the group of consumer c on topic t.
func groupOf(b *Backend) *group { return b.groups[groupKey{"t", "c"}] }

// route runs handler as consumer c of topic t in a Watermill router, until the test ends.
func route(t *testing.T, b *Backend, handler message.NoPublishHandlerFunc) {
	t.Helper()
	sub, err := b.Subscriber("c")
	if err != nil {
		t.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	router.AddConsumerHandler("c", "t", sub, handler)
	go func() { _ = router.Run(context.Background()) }()
	t.Cleanup(func() { _ = router.Close() })
	<-router.Running()
}

// A running consumer that does not take its messages has at most MaxBacklog of them
// waiting (and its output buffer and the one it has in hand taken): the next Publish
// waits until it takes half, and nothing is lost.
func TestPublishWaitsForBacklog(t *testing.T) {
	b := New(Config{MaxBacklog: 4, OutputBuffer: 2}, watermill.NopLogger{})
	defer b.Close()
	b.backlogWait = time.Hour
	_, out := subscribe(t, b)
	publishBlocked(t, b, out, 0, 10, 7) // backlog 4, output buffer 2, 1 in hand
}

// Once the backlog is full, a publisher that comes later waits too, although the
// consumer has taken one message since: all are woken when half are taken.
func TestFullBacklogWaitsUntilHalfTaken(t *testing.T) {
	b := New(Config{MaxBacklog: 4}, watermill.NopLogger{})
	defer b.Close()
	b.backlogWait = time.Hour
	subscribe(t, b)
	g := groupOf(b)
	g.backlog.Store(3) // under the bound, but it was full and is not down to half yet
	g.full.Store(true)
	done := make(chan error, 1)
	go func() { done <- b.admit(context.Background(), "t") }()
	waitFor(t, "a publisher waiting", func() bool { return g.waiters.Load() == 1 })
	g.took(4) // 2: half the bound
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if g.full.Load() {
		t.Fatal("full is still set with the backlog down to half")
	}
}

// The wait for room is bounded: after it, Publish goes ahead, and later ones do not wait
// for that consumer again until it takes a message.
func TestPublishGoesAheadAfterBacklogWait(t *testing.T) {
	b := New(Config{MaxBacklog: 2, OutputBuffer: -1}, watermill.NopLogger{})
	defer b.Close()
	b.backlogWait = 20 * time.Millisecond
	_, out := subscribe(t, b)
	g := groupOf(b)
	publishN(t, b, "t", 0, 1)
	waitFor(t, "the one message the consumer takes taken", func() bool { return g.backlog.Load() == 0 })
	publishN(t, b, "t", 1, 7) // returns although nobody takes the messages
	if !g.stalled.Load() {
		t.Fatal("a consumer that took nothing within backlogWait is not marked stalled: every Publish would wait for it again")
	}
	receive(t, out, 8)
	if g.stalled.Load() {
		t.Fatal("a consumer taking messages again is still marked stalled")
	}
}

// A Publish waiting for room ends with its message's context, and sends nothing.
func TestPublishWaitEndsWithContext(t *testing.T) {
	b := New(Config{MaxBacklog: 2, OutputBuffer: -1}, watermill.NopLogger{})
	defer b.Close()
	b.backlogWait = time.Hour
	_, out := subscribe(t, b)
	publishN(t, b, "t", 0, 3)
	ctx, cancel := context.WithCancel(context.Background())
	m := message.NewMessage("late", nil)
	m.SetContext(ctx)
	errc := make(chan error, 1)
	go func() { errc <- b.Publisher().Publish("t", m) }()
	g := groupOf(b)
	waitFor(t, "the publisher waiting", func() bool { return g.waiters.Load() == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish = %v, want context.Canceled", err)
	}
	if got := receive(t, out, 3); got["late"] {
		t.Fatal("the message whose Publish failed was sent")
	}
}

// A Publish waiting for a consumer ends when the consumer stops, and when the backend
// closes.
func TestWaitingPublishEndsWhenConsumerStopsOrBackendCloses(t *testing.T) {
	for _, end := range []string{"stop", "close"} {
		t.Run(end, func(t *testing.T) {
			b := New(Config{MaxBacklog: 2, OutputBuffer: -1}, watermill.NopLogger{})
			defer b.Close()
			b.backlogWait = time.Hour
			sub, _ := subscribe(t, b)
			publishN(t, b, "t", 0, 3)
			errc := make(chan error, 1)
			go func() { errc <- b.Publisher().Publish("t", message.NewMessage("late", nil)) }()
			g := groupOf(b)
			waitFor(t, "the publisher waiting", func() bool { return g.waiters.Load() == 1 })
			if end == "stop" {
				_ = sub.Close()
				if err := <-errc; err != nil {
					t.Fatalf("Publish after the consumer stopped = %v", err)
				}
				return
			}
			_ = b.Close()
			if err := <-errc; !errors.Is(err, ErrClosed) {
				t.Fatalf("Publish waiting when the backend closed = %v, want ErrClosed", err)
			}
		})
	}
}

// A consumer takes at most MaxInFlight messages it has not acked; an ack, or a nack,
// lets it take the next.
func TestInFlightBound(t *testing.T) {
	b := New(Config{MaxInFlight: 3, OutputBuffer: -1}, watermill.NopLogger{})
	defer b.Close()
	_, out := subscribe(t, b)
	publishN(t, b, "t", 0, 5)
	var taken []*message.Message
	for range 3 {
		taken = append(taken, <-out)
	}
	g := groupOf(b)
	waitFor(t, "two messages left in the backlog", func() bool { return g.backlog.Load() == 2 })
	if len(g.slots) != 3 {
		t.Fatalf("%d in-flight slots taken, want 3", len(g.slots))
	}
	taken[0].Ack()
	taken[1].Nack() // sent again: it counts in the backlog again
	got := receive(t, out, 2)
	taken[2].Ack()
	got2 := receive(t, out, 1)
	for id := range got2 {
		got[id] = true
	}
	if !got[taken[1].UUID] || len(got) != 3 {
		t.Fatalf("after an ack and a nack received %v, want the nacked %s and the two not taken before", got, taken[1].UUID)
	}
	// The subscription holds one slot while it waits for the next message.
	waitFor(t, "every slot given back", func() bool { return len(g.slots) <= 1 && g.backlog.Load() == 0 })
}

// A stopped consumer is not waited for: its messages wait for it, all of them, and once
// it runs again it is waited for again.
func TestStoppedConsumerIsNotWaitedFor(t *testing.T) {
	b := New(Config{MaxBacklog: 2, OutputBuffer: -1}, watermill.NopLogger{})
	defer b.Close()
	b.backlogWait = time.Hour
	sub, _ := subscribe(t, b)
	_ = sub.Close()
	publishN(t, b, "t", 0, 10)
	_, out := subscribe(t, b)
	receive(t, out, 10)
	publishBlocked(t, b, out, 10, 5, 3) // running again, it is waited for again
}

// Messages taken into a consumer's output buffer and not handed over when it stops are
// delivered when it starts again: none lost, none twice.
func TestBufferedMessagesOutliveAStop(t *testing.T) {
	b := New(Config{OutputBuffer: 8}, watermill.NopLogger{})
	defer b.Close()
	sub, out := subscribe(t, b)
	publishN(t, b, "t", 0, 5)
	waitFor(t, "5 messages in the output buffer", func() bool { return len(out) == 5 })
	first := receive(t, out, 1)
	_ = sub.Close()
	publishN(t, b, "t", 5, 3)
	_, out2 := subscribe(t, b)
	got := receive(t, out2, 7)
	for id := range first {
		if got[id] {
			t.Fatalf("message %s, taken before the stop, delivered again", id)
		}
	}
}

// Publishers beside a consumer that stops and starts again and again: every message is
// delivered, once.
func TestStopsWhilePublishing(t *testing.T) {
	b := New(Config{MaxBacklog: 16, MaxInFlight: 8, OutputBuffer: 4}, watermill.NopLogger{})
	defer b.Close()
	const publishers, each = 4, 500
	sub, out := subscribe(t, b)
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() { defer wg.Done(); publishN(t, b, "t", p*each, each) }()
	}
	got := map[string]bool{}
	for len(got) < publishers*each {
		for range 50 { // take some, then stop and start again
			select {
			case m, ok := <-out:
				if !ok {
					t.Fatal("the consumer's channel closed while it was subscribed")
				}
				if got[m.UUID] {
					t.Fatalf("message %s received twice", m.UUID)
				}
				got[m.UUID] = true
				m.Ack()
			case <-time.After(10 * time.Second):
				t.Fatalf("received %d of %d messages", len(got), publishers*each)
			}
			if len(got) == publishers*each {
				break
			}
		}
		_ = sub.Close()
		sub, out = subscribe(t, b)
	}
	wg.Wait()
}

// Nacked messages are sent again and counted again: after bursts of nacks, with every
// message acked in the end, nothing is left counted.
func TestNacksKeepTheCount(t *testing.T) {
	b := New(Config{MaxInFlight: 64, OutputBuffer: -1}, watermill.NopLogger{})
	defer b.Close()
	_, out := subscribe(t, b)
	g := groupOf(b)
	for round := range 5 {
		publishN(t, b, "t", round*64, 64)
		for range 64 {
			(<-out).Nack()
		}
		receive(t, out, 64)
		waitFor(t, "an empty backlog and the slots given back", func() bool {
			return g.backlog.Load() == 0 && len(g.slots) <= 1
		})
	}
}

// A handler publishing to its own topic does not wait for its own consumer, which it
// would stop: both in-flight messages' handlers publish while the backlog is full and
// an outside publisher waits, and every message is handled without waiting out the
// bound.
func TestHandlerPublishingToItsOwnTopic(t *testing.T) {
	b := New(Config{MaxBacklog: 2, MaxInFlight: 2, OutputBuffer: -1}, watermill.NopLogger{})
	defer b.Close()
	b.backlogWait = time.Hour
	gate := make(chan struct{})
	var handled, republished atomic.Int64
	route(t, b, func(msg *message.Message) error {
		handled.Add(1)
		if republished.Add(1) > 2 {
			return nil
		}
		<-gate // both in-flight slots held until the backlog is full
		m := message.NewMessage("again-"+msg.UUID, nil)
		m.SetContext(msg.Context())
		return b.Publisher().Publish("t", m)
	})
	g := groupOf(b)
	_, done := publishing(t, b, 0, 10)
	waitFor(t, "the backlog full and a publisher waiting", func() bool { return g.waiters.Load() == 1 && g.full.Load() })
	close(gate)
	waitFor(t, "12 messages handled", func() bool { return handled.Load() == 12 })
	<-done
}

// With a slow handler and publishers far faster, the goroutines stay bounded: about
// four per in-flight message (GoChannel's two, the router's handler, the slot's
// watcher) and two per waiting one, where a bare GoChannel keeps two for every message
// published and not yet acked.
func TestGoroutinesStayBounded(t *testing.T) {
	const inFlight, backlog, messages = 128, 128, 4000
	b := New(Config{MaxInFlight: inFlight, MaxBacklog: backlog}, watermill.NopLogger{})
	defer b.Close()
	var handled atomic.Int64
	route(t, b, func(*message.Message) error {
		time.Sleep(5 * time.Millisecond) // a slow handler
		handled.Add(1)
		return nil
	})
	before := runtime.NumGoroutine()
	peak := 0
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); publishN(t, b, "t", p*messages/8, messages/8) }()
	}
	waitFor(t, "every message handled", func() bool {
		peak = max(peak, runtime.NumGoroutine()-before)
		return handled.Load() == messages
	})
	wg.Wait()
	if limit := 4*inFlight + 2*backlog + 2*DefaultOutputBuffer + 100; peak > limit {
		t.Fatalf("%d goroutines at the peak for %d messages, want at most %d", peak, messages, limit)
	}
	t.Logf("%d goroutines at the peak for %d messages (bound %d in flight, %d waiting)", peak, messages, inFlight, backlog)
}
