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
// (and the one its subscription holds): the next Publish waits until it takes some, and
// nothing is lost.
func TestPublishWaitsForBacklog(t *testing.T) {
	b := New(Config{MaxBacklog: 4}, watermill.NopLogger{})
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
	if n := published.Load(); n > 5 {
		t.Fatalf("%d messages published to a consumer that took none, want at most 5 (backlog 4 + 1 held)", n)
	}
	if got := receive(t, out, 10); len(got) != 10 {
		t.Fatalf("received %d distinct messages, want 10", len(got))
	}
	<-done
}

// The wait for room is bounded: after it, Publish goes ahead.
func TestPublishGoesAheadAfterBacklogWait(t *testing.T) {
	b := New(Config{MaxBacklog: 2}, watermill.NopLogger{})
	defer b.Close()
	b.backlogWait = 20 * time.Millisecond
	sub, _ := b.Subscriber("c")
	out, err := sub.Subscribe(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, b, "t", 0, 8) // returns although nobody takes the messages
	receive(t, out, 8)
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
