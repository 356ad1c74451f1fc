package kafka_test

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// foreignBus starts a bus on hosts whose rows go to dsn, with fn adding its handlers.
// extra are more backend_settings.
func foreignBus(t *testing.T, hosts []string, dsn string, fn func(*bus.Bus), extra ...any) *bus.Bus {
	t.Helper()
	b, err := bus.New(context.Background(), bus.Config{
		Backend:         "kafka",
		BackendSettings: settings(hosts, append([]any{"partitions", 4}, extra...)...),
		Store:           bus.StoreConfig{Driver: "sqlite", DSN: dsn},
		Retry:           middleware.RetryConfig{MaxRetries: -1},
		PoisonTopic:     "foreign.poison." + watermill.NewShortUUID(),
		ShutdownTimeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	fn(b)
	bustest.Start(t, b, 30*time.Second)
	return b
}

// TestForeignProducer: 1,000 records of a plain franz-go producer (no Watermill
// headers) over four partitions are all handled and recorded once as succeeded, with
// their position as message UUID and their key and headers in the metadata. A lost
// ack redelivers a record onto the same row, and a second consumer group re-reading
// every record from the start (another process, the same handler) updates the same
// 1,000 rows.
func TestForeignProducer(t *testing.T) {
	const total, partitions = 1000, 4
	topic := "foreign." + watermill.NewShortUUID()
	hosts := startKafka(t, kfake.SeedTopics(partitions, topic))
	dsn := "file:" + filepath.Join(t.TempDir(), "events.db")

	var (
		handled   bustest.Distinct
		badMeta   atomic.Value
		redeliver = func(msg *message.Message) bool {
			return msg.Metadata.Get("seq") != "" && mustAtoi(msg.Metadata.Get("seq"))%10 == 0
		}
	)
	handler := func(ctx context.Context, msg *message.Message) error {
		seq := msg.Metadata.Get("seq")
		if want := "key-" + strconv.Itoa(mustAtoi(seq)%50); msg.Metadata.Get(modelevent.MetadataKey) != want {
			badMeta.Store(fmt.Sprintf("message %s (seq %q): key %q, want %q", msg.UUID, seq, msg.Metadata.Get(modelevent.MetadataKey), want))
		}
		handled.Add(msg.UUID)
		return nil
	}
	b := foreignBus(t, hosts, dsn, func(b *bus.Bus) {
		bustest.LoseFirstAck(b, topic, redeliver)
		if err := b.Handle("legacy", topic, handler); err != nil {
			t.Fatal(err)
		}
	})

	produced := produceForeign(t, hosts, topic, total)
	used := map[int32]bool{}
	for _, r := range produced {
		used[r.Partition] = true
	}
	if len(used) != partitions {
		t.Fatalf("records landed on %d partitions, want %d", len(used), partitions)
	}

	bustest.WaitUntil(t, 120*time.Second, "every record handled", func() bool { return handled.Len() == total })
	consumed := modelevent.Filter{Topic: topic, Direction: modelevent.Consumed}
	rows := bustest.WaitRows(t, 60*time.Second, "every record recorded as succeeded, the lost acks twice", b.Store(), consumed, func(rows []modelevent.ModelEvent) bool {
		return len(rows) == total && bustest.Attempts(rows) == total+total/10
	})
	if v := badMeta.Load(); v != nil {
		t.Fatal(v)
	}
	position := regexp.MustCompile(`^kafka:` + regexp.QuoteMeta(topic) + `/([0-9])/([0-9]+)$`)
	byID := map[string]modelevent.ModelEvent{}
	for _, r := range rows {
		byID[r.MessageUUID] = r
		if r.Handler != "legacy" {
			t.Fatalf("row %s: handler %q, want legacy", r.MessageUUID, r.Handler)
		}
		if !position.MatchString(r.MessageUUID) {
			t.Fatalf("message UUID %q is not kafka:<topic>/<partition>/<offset>", r.MessageUUID)
		}
	}
	for _, p := range produced {
		id := fmt.Sprintf("kafka:%s/%d/%d", topic, p.Partition, p.Offset)
		r, ok := byID[id]
		if !ok {
			t.Fatalf("record at %s has no row", id)
		}
		seq := string(p.Headers[0].Value)
		if r.Metadata[modelevent.MetadataKey] != string(p.Key) || r.Metadata["seq"] != seq || r.Metadata["source"] != "legacy-app" {
			t.Fatalf("row %s metadata %v, want key %s, seq %s, source legacy-app", id, r.Metadata, p.Key, seq)
		}
	}
	// Every record has its row with its seq (above), so every row has a seq.
	bustest.CheckSucceededOnce(t, rows, total, func(r modelevent.ModelEvent) int {
		if mustAtoi(r.Metadata["seq"])%10 == 0 {
			return 2 // its first ack was lost
		}
		return 1
	})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Another process with another consumer group prefix reads every record again.
	b2 := foreignBus(t, hosts, dsn, func(b *bus.Bus) {
		if err := b.Handle("legacy", topic, func(ctx context.Context, msg *message.Message) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}, "consumer_group", "again")
	rows = bustest.WaitRows(t, 120*time.Second, "every record read again onto its row", b2.Store(), consumed, func(rows []modelevent.ModelEvent) bool {
		return bustest.Attempts(rows) == 2*total+total/10
	})
	bustest.CheckSucceededOnce(t, rows, total, nil)
}

// produceForeign sends n records to topic with a plain franz-go client: keys key-0 …
// key-49, headers seq and source, no Watermill UUID. It returns them with their
// partitions and offsets.
func produceForeign(t *testing.T, hosts []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(hosts...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{
			Key:   []byte("key-" + strconv.Itoa(i%50)),
			Value: []byte(fmt.Sprintf(`{"n":%d}`, i)),
			Headers: []kgo.RecordHeader{
				{Key: "seq", Value: []byte(strconv.Itoa(i))},
				{Key: "source", Value: []byte("legacy-app")},
			},
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return recs
}

// TestForeignUndecodable: a record of a plain producer on a schema-registry topic
// whose value is not Confluent wire format is poisoned with the reason under its
// position id; the handler never runs and the records after it are handled.
func TestForeignUndecodable(t *testing.T) {
	hosts := startKafka(t)
	url, _ := startRegistry(t)
	topic := "foreign.sr." + watermill.NewShortUUID()
	register(t, url, topic+"-value", orderV1)
	var ran atomic.Int64
	b := newSchemaBus(t, hosts, url, map[string]any{"topics": []any{topic}}, func(b *bus.Bus) {
		_ = b.Handle("billing", topic, func(ctx context.Context, msg *message.Message) error {
			ran.Add(1)
			return nil
		})
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(hosts...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bad := &kgo.Record{Key: []byte("o-1"), Value: []byte(`{"id":1,"total":2}`)}
	if err := cl.ProduceSync(ctx, bad).FirstErr(); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("kafka:%s/%d/%d", topic, bad.Partition, bad.Offset)
	rows := waitRows(t, b, modelevent.Filter{MessageUUID: id, Direction: modelevent.Consumed}, 1, func(e modelevent.ModelEvent) bool {
		return e.Status == modelevent.StatusPoisoned
	})
	if want := "not in Confluent wire format"; !strings.Contains(rows[0].LastError, want) {
		t.Errorf("poisoned with %q, want the reason %q", rows[0].LastError, want)
	}
	if rows[0].Metadata[modelevent.MetadataKey] != "o-1" {
		t.Errorf("poisoned row metadata %v, want the record key o-1", rows[0].Metadata)
	}
	if n := ran.Load(); n != 0 {
		t.Fatalf("handler ran %d times on an undecodable record", n)
	}
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(fmt.Sprintf("not a number: %q", s))
	}
	return n
}
