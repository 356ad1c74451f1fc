package amqp

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

func openTest(t *testing.T, cfg Config) *Backend {
	t.Helper()
	cfg.URL = brokerURL(t)
	b, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func testTopic(name string) string {
	return fmt.Sprintf("amqptest.%s.%s", name, watermill.NewShortUUID())
}

// collect acks every message of ch into a set until ctx ends.
func collect(ctx context.Context, ch <-chan *message.Message, mu *sync.Mutex, seen map[string]int) {
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				return
			}
			mu.Lock()
			seen[string(m.Payload)]++
			mu.Unlock()
			m.Ack()
		case <-ctx.Done():
			return
		}
	}
}

func publishN(t *testing.T, b *Backend, topic string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := b.Publisher().Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
}

func waitCount(t *testing.T, mu *sync.Mutex, seen map[string]int, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		got := len(seen)
		mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Fatalf("saw %d distinct messages, want %d", len(seen), n)
}

// TestDurableQueueSharesMessages: with durable_queue, messages published before any
// subscriber wait in the topic's queue, and two consumers of the topic (whatever their
// names) share the messages instead of each receiving all of them.
func TestDurableQueueSharesMessages(t *testing.T) {
	b := openTest(t, Config{Topology: TopologyDurableQueue})
	topic := testTopic("queue")
	const n = 40
	publishN(t, b, topic, n) // no subscriber yet
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	seenA, seenB := map[string]int{}, map[string]int{}
	for name, seen := range map[string]map[string]int{"a": seenA, "b": seenB} {
		sub, err := b.Subscriber(name)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := sub.Subscribe(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		go collect(ctx, ch, &mu, seen)
	}
	publishN(t, b, topic, n)
	all := map[string]int{}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		total := 0
		for _, v := range seenA {
			total += v
		}
		for _, v := range seenB {
			total += v
		}
		mu.Unlock()
		if total >= 2*n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, s := range []map[string]int{seenA, seenB} {
		for k, v := range s {
			all[k] += v
			total += v
		}
	}
	if total != 2*n || len(all) != n {
		t.Fatalf("consumers a and b handled %d messages (%d distinct payloads), want %d in total: each message once", total, len(all), 2*n)
	}
	if len(seenA) == 0 || len(seenB) == 0 {
		t.Fatalf("work not shared: a=%d b=%d", len(seenA), len(seenB))
	}
}

// TestTopicExchange: one topic exchange for every topic, routed by the topic.
func TestTopicExchange(t *testing.T) {
	exchange := testTopic("exchange")
	b := openTest(t, Config{ExchangeType: "topic", ExchangeNameTemplate: exchange})
	orders, users := testTopic("orders"), testTopic("users")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := b.Subscriber("audit")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := sub.Subscribe(ctx, orders)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	go collect(ctx, ch, &mu, seen)
	if err := b.Publisher().Publish(users, message.NewMessage(watermill.NewUUID(), []byte("user"))); err != nil {
		t.Fatal(err)
	}
	publishN(t, b, orders, 3)
	waitCount(t, &mu, seen, 3)
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if seen["user"] != 0 || len(seen) != 3 {
		t.Fatalf("routing: %v", seen)
	}
}

// TestBacklog counts the ready messages of a stopped consumer's queue.
func TestBacklog(t *testing.T) {
	b := openTest(t, Config{})
	topic := testTopic("backlog")
	ctx := context.Background()
	if n, err := b.Backlog(ctx, "reports", topic); err != nil || n != 0 {
		t.Fatalf("backlog before the queue exists = %d, %v; want 0, nil", n, err)
	}
	sub, err := b.Subscriber("reports")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.(message.SubscribeInitializer).SubscribeInitialize(topic); err != nil {
		t.Fatal(err)
	}
	publishN(t, b, topic, 7)
	if n, err := b.Backlog(ctx, "reports", topic); err != nil || n != 7 {
		t.Fatalf("backlog = %d, %v; want 7", n, err)
	}
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := sub.Subscribe(subCtx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	go collect(subCtx, ch, &mu, seen)
	waitCount(t, &mu, seen, 7)
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := b.Backlog(ctx, "reports", topic)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog after consuming = %d", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The backend still works after a passive declare of a missing queue.
	if n, err := b.Backlog(ctx, "nobody", topic); err != nil || n != 0 {
		t.Fatalf("backlog of a consumer that never subscribed = %d, %v", n, err)
	}
	publishN(t, b, topic, 1)
}

// TestPublishVariants publishes without confirms on a channel per publish, and with a
// single-message prefetch, through the registry's settings.
func TestPublishVariants(t *testing.T) {
	b := openTest(t, Config{PublishChannels: -1, PublisherConfirms: new(bool), PrefetchCount: 1})
	if c := b.Config(); c.PublishChannels != -1 || *c.PublisherConfirms || c.PrefetchCount != 1 {
		t.Fatalf("config: %+v", c)
	}
	topic := testTopic("variants")
	sub, err := b.Subscriber("v")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	go collect(ctx, ch, &mu, seen)
	publishN(t, b, topic, 20)
	waitCount(t, &mu, seen, 20)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := b.Publisher().Publish(topic, message.NewMessage(watermill.NewUUID(), nil)); err == nil {
		t.Fatal("publish after close succeeded")
	}
}
