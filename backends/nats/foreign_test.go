package nats

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	natsgo "github.com/nats-io/nats.go"

	"github.com/go-eventbus/eventbus/bus"
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
	go func() { _ = b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case <-time.After(30 * time.Second):
		t.Fatal("bus did not start")
	}
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
		nHandled atomic.Int64
		handled  sync.Map
		badMeta  atomic.Value
		lost     sync.Map
	)
	b, subject, stream := foreignBus(t, topic, func(b *bus.Bus) {
		b.Router().AddMiddleware(func(h message.HandlerFunc) message.HandlerFunc {
			return func(msg *message.Message) ([]*message.Message, error) {
				out, err := h(msg)
				if seq, _ := strconv.Atoi(msg.Metadata.Get("seq")); err == nil && seq%10 == 0 {
					if _, again := lost.LoadOrStore(msg.UUID, true); !again {
						return out, errors.New("simulated lost ack")
					}
				}
				return out, err
			}
		})
		if err := b.Handle("legacy", topic, func(ctx context.Context, msg *message.Message) error {
			if got := msg.Metadata.Get("tag"); got != `["a","b"]` {
				badMeta.Store(fmt.Sprintf("message %s: tag %q", msg.UUID, got))
			}
			if _, again := handled.LoadOrStore(msg.UUID, true); !again {
				nHandled.Add(1)
			}
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

	waitUntil(t, 120*time.Second, "every message handled", func() bool { return nHandled.Load() == total })
	var rows []modelevent.ModelEvent
	waitUntil(t, 60*time.Second, "every message recorded as succeeded, the lost acks twice", func() bool {
		rows = listRows(t, b.Store(), modelevent.Filter{Topic: topic, Direction: modelevent.Consumed})
		n := 0
		for _, r := range rows {
			if r.Status == modelevent.StatusSucceeded {
				n += r.Attempts
			}
		}
		return n == total+total/10
	})
	if v := badMeta.Load(); v != nil {
		t.Fatal(v)
	}
	if len(rows) != total {
		t.Fatalf("%d consumed rows, want %d", len(rows), total)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		seq, ok := want[r.MessageUUID]
		if !ok || seen[r.MessageUUID] {
			t.Fatalf("row with message UUID %q: unknown or twice", r.MessageUUID)
		}
		seen[r.MessageUUID] = true
		attempts := 1
		if seq%10 == 0 {
			attempts = 2 // its first ack was lost
		}
		if r.Status != modelevent.StatusSucceeded || r.Attempts != attempts {
			t.Fatalf("row %s (seq %d): %s, %d attempts, want succeeded, %d", r.MessageUUID, seq, r.Status, r.Attempts, attempts)
		}
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
		var row modelevent.ModelEvent
		waitUntil(t, 30*time.Second, "message "+ids[i]+" poisoned", func() bool {
			rows := listRows(t, b.Store(), modelevent.Filter{MessageUUID: ids[i], Direction: modelevent.Consumed})
			if len(rows) == 1 {
				row = rows[0]
			}
			return len(rows) == 1 && row.Status == modelevent.StatusPoisoned
		})
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

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func listRows(t *testing.T, store modelevent.Store, f modelevent.Filter) []modelevent.ModelEvent {
	t.Helper()
	var out []modelevent.ModelEvent
	opts := modelevent.ListOptions{Limit: 1000}
	for {
		p, err := store.List(context.Background(), f, opts)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Events...)
		if p.NextCursor == "" {
			return out
		}
		opts.Cursor = p.NextCursor
	}
}
