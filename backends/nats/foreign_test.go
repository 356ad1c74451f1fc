package nats

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	natsgo "github.com/nats-io/nats.go"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// foreignBus starts a bus on the shared server with fn adding its handlers, and
// returns it with the subject and stream of topic (provisioned).
func foreignBus(t *testing.T, topic string, fn func(*bus.Bus)) (*bus.Bus, string, string) {
	t.Helper()
	b, err := bus.New(context.Background(), bus.Config{
		Backend:         "nats",
		BackendSettings: serverSettings(t),
		Store:           bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "events.db")},
		Retry:           middleware.RetryConfig{MaxRetries: -1},
		PoisonTopic:     "foreign.poison." + watermill.NewShortUUID(),
		ShutdownTimeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	backend := b.Backend().(*Backend)
	subject, stream, err := backend.topicStream(backend.js, topic)
	if err != nil {
		t.Fatal(err)
	}
	fn(b)
	bustest.Start(t, b, 30*time.Second)
	return b, subject, stream
}

// jetStream connects a plain nats.go client to the shared server.
func jetStream(t *testing.T) natsgo.JetStreamContext {
	t.Helper()
	nc, err := natsgo.Connect(serverURL(), natsgo.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestForeignProducer: 1,000 messages of a plain nats.go JetStream publisher (no
// Watermill header; half with a Nats-Msg-Id; every one with a header of two values)
// are all handled and recorded once as succeeded, under their Nats-Msg-Id or
// "nats:<stream>/<sequence>", with the two values as a JSON array in the metadata. A
// lost ack makes JetStream deliver the message again, onto the same row.
func TestForeignProducer(t *testing.T) {
	const total = 1000
	// Short, so that "nats:<stream>/<sequence>" fits in 64 characters (the stream
	// prefix of the test is unique already).
	topic := "f." + watermill.NewShortUUID()[:8]
	var (
		handled bustest.Distinct
		badMeta atomic.Value
	)
	b, subject, stream := foreignBus(t, topic, func(b *bus.Bus) {
		bustest.LoseFirstAck(b, topic, func(msg *message.Message) bool {
			seq, _ := strconv.Atoi(msg.Metadata.Get("seq"))
			return seq%10 == 0
		})
		if err := b.Handle("legacy", topic, func(ctx context.Context, msg *message.Message) error {
			if got := msg.Metadata.Get("tag"); got != `["a","b"]` {
				badMeta.Store(fmt.Sprintf("message %s: tag %q", msg.UUID, got))
			}
			handled.Add(msg.UUID)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})

	js := jetStream(t)
	want := make(map[string]int, total) // message UUID → seq
	for i := 0; i < total; i++ {
		h := natsgo.Header{"seq": {strconv.Itoa(i)}, "tag": {"a", "b"}}
		if i%2 == 0 {
			h.Set(natsgo.MsgIdHdr, "legacy-"+strconv.Itoa(i))
		}
		ack, err := js.PublishMsg(&natsgo.Msg{Subject: subject, Header: h, Data: []byte(fmt.Sprintf(`{"n":%d}`, i))})
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if ack.Stream != stream {
			t.Fatalf("stored in stream %s, want %s", ack.Stream, stream)
		}
		id := "nats:" + stream + "/" + strconv.FormatUint(ack.Sequence, 10)
		if i%2 == 0 {
			id = "legacy-" + strconv.Itoa(i)
		}
		want[id] = i
	}

	bustest.WaitUntil(t, 120*time.Second, "every message handled", func() bool { return handled.Len() == total })
	consumed := modelevent.Filter{Topic: topic, Direction: modelevent.Consumed}
	rows := bustest.WaitRows(t, 60*time.Second, "every message recorded as succeeded, the lost acks twice", b.Store(), consumed, func(rows []modelevent.ModelEvent) bool {
		return bustest.Attempts(rows, modelevent.StatusSucceeded) == total+total/10
	})
	if v := badMeta.Load(); v != nil {
		t.Fatal(v)
	}
	for _, r := range rows {
		if _, ok := want[r.MessageUUID]; !ok {
			t.Fatalf("row with message UUID %q: unknown", r.MessageUUID)
		}
	}
	bustest.CheckSucceededOnce(t, rows, total, func(r modelevent.ModelEvent) int {
		if want[r.MessageUUID]%10 == 0 {
			return 2 // its first ack was lost
		}
		return 1
	})
	for _, r := range rows {
		seq := want[r.MessageUUID]
		if r.Metadata["seq"] != strconv.Itoa(seq) || r.Metadata["tag"] != `["a","b"]` {
			t.Fatalf("row %s metadata %v", r.MessageUUID, r.Metadata)
		}
	}
}

// TestForeignUndecodable: messages whose Watermill UUID header cannot be a message
// UUID (two different values; longer than the store keeps) are poisoned with the
// reason under their stream position; the handler never runs on them and the message
// after them is handled.
func TestForeignUndecodable(t *testing.T) {
	topic := "b." + watermill.NewShortUUID()[:8]
	ran := make(chan string, 8)
	b, subject, stream := foreignBus(t, topic, func(b *bus.Bus) {
		if err := b.Handle("billing", topic, func(ctx context.Context, msg *message.Message) error {
			ran <- string(msg.Payload)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	js := jetStream(t)
	cases := []struct {
		uuids  []string
		reason string
	}{
		{[]string{"id-1", "id-2"}, "has 2 different values"},
		{[]string{strings.Repeat("x", 100)}, "is 100 bytes long"},
	}
	ids := make([]string, len(cases))
	for i, c := range cases {
		ack, err := js.PublishMsg(&natsgo.Msg{Subject: subject, Header: natsgo.Header{wmnats.WatermillUUIDHdr: c.uuids}, Data: []byte("bad")})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = "nats:" + stream + "/" + strconv.FormatUint(ack.Sequence, 10)
	}
	if _, err := js.PublishMsg(&natsgo.Msg{Subject: subject, Data: []byte("good")}); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		row := bustest.WaitRows(t, 30*time.Second, "message "+ids[i]+" poisoned", b.Store(), modelevent.Filter{MessageUUID: ids[i], Direction: modelevent.Consumed}, bustest.OneRowIn(modelevent.StatusPoisoned))[0]
		if !strings.Contains(row.LastError, c.reason) || !strings.Contains(row.LastError, "could not be decoded") {
			t.Errorf("%s poisoned with %q, want the reason %q", ids[i], row.LastError, c.reason)
		}
	}
	select {
	case p := <-ran:
		if p != "good" {
			t.Fatalf("handler ran on %q", p)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the message after the undecodable ones was not handled")
	}
}
