package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/backends/kafka"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/modelevent"
)

func newBackend(t *testing.T, cfg kafka.Config) *kafka.Backend {
	t.Helper()
	cfg.SessionTimeout, cfg.HeartbeatInterval, cfg.RebalanceTimeout = 6*time.Second, 200*time.Millisecond, 5*time.Second
	b, err := kafka.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func publishN(t *testing.T, b *kafka.Backend, topic string, n int, key func(i int) string) {
	t.Helper()
	for i := 0; i < n; i++ {
		msg := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint(i)))
		if key != nil {
			msg.Metadata.Set(modelevent.MetadataKey, key(i))
		}
		if err := b.Publisher().Publish(topic, msg); err != nil {
			t.Fatal(err)
		}
	}
}

func backlog(t *testing.T, b *kafka.Backend, consumer, topic string) int64 {
	t.Helper()
	n, err := b.Backlog(context.Background(), consumer, topic)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBacklogAndGroups: a consumer's backlog is its group's lag; messages published
// before a consumer's first start wait for it (initial_offset oldest); the consumer
// group is "<consumer_group>.<consumer>", one per consumer.
func TestBacklogAndGroups(t *testing.T) {
	hosts := startKafka(t)
	b := newBackend(t, kafka.Config{BrokerHosts: hosts, ConsumerGroup: "app", Partitions: 3})
	topic := "backlog." + watermill.NewShortUUID()
	publishN(t, b, topic, 7, nil)
	if n := backlog(t, b, "reader", topic); n != 7 {
		t.Fatalf("backlog before any consumer = %d, want 7", n)
	}
	sub, err := b.Subscriber("reader")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 7; i++ {
		select {
		case m := <-ch:
			m.Ack()
		case <-time.After(15 * time.Second):
			t.Fatalf("received %d of 7 messages published before the consumer started", i)
		}
	}
	bustest.WaitUntil(t, 10*time.Second, "the reader's backlog to drain", func() bool { return backlog(t, b, "reader", topic) == 0 })
	if n := backlog(t, b, "other", topic); n != 7 {
		t.Fatalf("another consumer's backlog = %d, want 7", n)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	publishN(t, b, topic, 2, nil)
	if n := backlog(t, b, "reader", topic); n != 2 {
		t.Fatalf("backlog of the stopped reader = %d, want 2", n)
	}
	// The group carries the prefix: a backend without it sees another group.
	plain := newBackend(t, kafka.Config{BrokerHosts: hosts})
	if n := backlog(t, plain, "reader", topic); n != 9 {
		t.Fatalf("backlog of group %q = %d, want 9 (nothing consumed)", "reader", n)
	}
	// With initial_offset newest, a group that never committed has no backlog.
	newest := newBackend(t, kafka.Config{BrokerHosts: hosts, InitialOffset: kafka.OffsetNewest})
	if n := backlog(t, newest, "fresh", topic); n != 0 {
		t.Fatalf("newest: backlog = %d, want 0", n)
	}
}

// TestPartitionKey: messages with the same eventbus_key share a partition and keep
// their order.
func TestPartitionKey(t *testing.T) {
	hosts := startKafka(t)
	b := newBackend(t, kafka.Config{BrokerHosts: hosts, Partitions: 4})
	topic := "keyed." + watermill.NewShortUUID()
	const n = 40
	publishN(t, b, topic, n, func(i int) string { return fmt.Sprint("order-", i%4) })
	sub, err := b.Subscriber("keyed")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ch, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	partition := map[string]int32{}
	last := map[string]int{}
	for i := 0; i < n; i++ {
		select {
		case m := <-ch:
			key := m.Metadata.Get(modelevent.MetadataKey)
			p, _ := wkafka.MessagePartitionFromCtx(m.Context())
			if q, ok := partition[key]; ok && q != p {
				t.Fatalf("key %s on partitions %d and %d", key, q, p)
			}
			partition[key] = p
			var seq int
			fmt.Sscan(string(m.Payload), &seq)
			if prev, ok := last[key]; ok && seq < prev {
				t.Fatalf("key %s: %d after %d", key, seq, prev)
			}
			last[key] = seq
			m.Ack()
		case <-time.After(15 * time.Second):
			t.Fatalf("received %d of %d", i, n)
		}
	}
}

// TestNoAutoCreate: with auto_create_topics false, publishing to a missing topic fails
// instead of creating it.
func TestNoAutoCreate(t *testing.T) {
	if realBrokers() != nil {
		t.Skip("a real cluster may auto-create topics itself")
	}
	hosts := startKafka(t)
	off := false
	b := newBackend(t, kafka.Config{BrokerHosts: hosts, AutoCreateTopics: &off})
	err := b.Publisher().Publish("missing."+watermill.NewShortUUID(), message.NewMessage(watermill.NewUUID(), nil))
	if err == nil {
		t.Fatal("published to a missing topic with auto_create_topics false")
	}
	t.Log(err)
}
