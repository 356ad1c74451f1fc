package memory

import (
	"context"
	"fmt"
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
			t.Fatal(err)
		}
	}
}

// receive takes n messages from out, acking each, and returns their UUIDs.
func receive(t *testing.T, out <-chan *message.Message, n int) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case m := <-out:
			got[m.UUID] = true
			m.Ack()
		case <-timeout:
			t.Fatalf("received %d of %d messages", len(got), n)
		}
	}
	return got
}

// A running consumer that does not take its messages holds at most MaxBacklog of them
// (and its output buffer, and the one its subscription has in hand): the next Publish waits until it takes some, and
// nothing is lost.
func TestPublishWaitsForBacklog(t *testing.T) {
	b := New(Config{MaxBacklog: 4, OutputBuffer: 2}, watermill.NopLogger{})
	defer b.Close()
	b.backlogWait = time.Hour
	sub, _ := b.Subscriber("c")
	out, err := sub.Subscribe(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	var published atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10 {
			if err := b.Publisher().Publish("t", message.NewMessage(fmt.Sprint(i), nil)); err != nil {
				t.Error(err)
			}
			published.Add(1)
		}
	}()
	g := b.groups[groupKey{"t", "c"}]
	waitFor(t, "a publisher waiting for room", func() bool { return g.waiters.Load() == 1 })
	if n := published.Load(); n > 7 {
		t.Fatalf("%d messages published to a consumer that took none, want at most 7 (backlog 4, output buffer 2, 1 in hand)", n)
	}
	if got := receive(t, out, 10); len(got) != 10 {
		t.Fatalf("received %d distinct messages, want 10", len(got))
	}
	<-done
}

// The wait for room is bounded: after it, Publish goes ahead, and later ones do not wait
// for that consumer again until it takes a message.
func TestPublishGoesAheadAfterBacklogWait(t *testing.T) {
	b := New(Config{MaxBacklog: 2, OutputBuffer: -1}, watermill.NopLogger{})
	defer b.Close()
	b.backlogWait = 20 * time.Millisecond
	sub, _ := b.Subscriber("c")
	out, err := sub.Subscribe(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, b, "t", 0, 8) // returns although nobody takes the messages
	g := b.groups[groupKey{"t", "c"}]
	if !g.stalled.Load() {
		t.Fatal("a consumer that took nothing within backlogWait is not marked stalled: every Publish would wait for it again")
	}
	receive(t, out, 8)
	if g.stalled.Load() {
		t.Fatal("a consumer taking messages again is still marked stalled")
	}
}

// A stopped consumer is not waited for: its messages wait for it, all of them.
func TestStoppedConsumerIsNotWaitedFor(t *testing.T) {
	b := New(Config{MaxBacklog: 2}, watermill.NopLogger{})
	defer b.Close()
	b.backlogWait = time.Hour
	sub, _ := b.Subscriber("c")
	if _, err := sub.Subscribe(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	_ = sub.Close()
	publishN(t, b, "t", 0, 10)
	sub2, _ := b.Subscriber("c")
	out, err := sub2.Subscribe(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	receive(t, out, 10)
	// Running again, it is waited for again, counting from the messages published now.
	publishN(t, b, "t", 10, 2)
	receive(t, out, 2)
}

// MaxBacklog -1 is GoChannel's own behaviour: no bound, no wait.
func TestUnboundedBacklog(t *testing.T) {
	b := New(Config{MaxBacklog: -1}, watermill.NopLogger{})
	defer b.Close()
	b.backlogWait = time.Hour
	sub, _ := b.Subscriber("c")
	out, err := sub.Subscribe(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, b, "t", 0, 3*DefaultMaxBacklog)
	receive(t, out, 3*DefaultMaxBacklog)
}

// Messages taken into a consumer's output buffer and not handed over when it stops are
// delivered when it starts again: none lost, none twice.
func TestBufferedMessagesOutliveAStop(t *testing.T) {
	b := New(Config{OutputBuffer: 8}, watermill.NopLogger{})
	defer b.Close()
	sub, _ := b.Subscriber("c")
	out, err := sub.Subscribe(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, b, "t", 0, 5)
	waitFor(t, "5 messages in the output buffer", func() bool { return len(out) == 5 })
	first := receive(t, out, 1)
	_ = sub.Close()
	publishN(t, b, "t", 5, 3)
	sub2, _ := b.Subscriber("c")
	out2, err := sub2.Subscribe(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	got := receive(t, out2, 7)
	for id := range first {
		if got[id] {
			t.Fatalf("message %s, taken before the stop, delivered again", id)
		}
	}
}
