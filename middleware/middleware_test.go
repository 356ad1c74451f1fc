package middleware_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

func openStore(t testing.TB) *modelevent.SQLStore {
	t.Helper()
	s, err := modelevent.Open(context.Background(), "sqlite", "file:"+filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestRetryDelays checks the waits between attempts follow the configured backoff.
func TestRetryDelays(t *testing.T) {
	var starts []time.Time
	h := middleware.Retry(middleware.RetryConfig{MaxRetries: 4, InitialInterval: 20 * time.Millisecond, MaxInterval: time.Second, Multiplier: 2})(
		func(msg *message.Message) ([]*message.Message, error) {
			starts = append(starts, time.Now())
			return nil, errors.New("fail")
		})
	if _, err := h(message.NewMessage("1", nil)); err == nil {
		t.Fatal("want the last error")
	}
	if len(starts) != 5 {
		t.Fatalf("attempts = %d, want 5", len(starts))
	}
	want := []time.Duration{20, 40, 80, 160}
	for i, w := range want {
		got := starts[i+1].Sub(starts[i])
		w *= time.Millisecond
		if got < w*9/10 || got > 3*w+50*time.Millisecond {
			t.Errorf("wait before retry %d = %v, want about %v", i+1, got, w)
		}
	}
}

func TestPermanentIsNotRetried(t *testing.T) {
	var calls atomic.Int32
	h := middleware.Retry(middleware.RetryConfig{MaxRetries: 5, InitialInterval: time.Millisecond})(
		func(msg *message.Message) ([]*message.Message, error) {
			calls.Add(1)
			return nil, middleware.Permanent(errors.New("malformed"))
		})
	_, err := h(message.NewMessage("1", nil))
	if !middleware.IsPermanent(err) || calls.Load() != 1 {
		t.Fatalf("err = %v, calls = %d; want the permanent error after one call", err, calls.Load())
	}
	if middleware.Permanent(nil) != nil {
		t.Fatal("Permanent(nil) != nil")
	}
}

// TestChainOnRawRouter proves the chain works as plain Watermill middleware.
func TestChainOnRawRouter(t *testing.T) {
	store := openStore(t)
	rec, err := middleware.NewRecorder(store, middleware.RecorderConfig{Backend: "gochannel"})
	if err != nil {
		t.Fatal(err)
	}
	pubsub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	chain, err := middleware.Chain{
		Recorder: rec, PoisonPublisher: pubsub, PoisonTopic: "poison",
		Retry: middleware.RetryConfig{MaxRetries: 2, InitialInterval: time.Millisecond},
	}.Middleware()
	if err != nil {
		t.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	router.AddMiddleware(chain)
	router.AddConsumerHandler("raw", "in", pubsub, func(msg *message.Message) error {
		if string(msg.Payload) == "bad" {
			return errors.New("bad payload")
		}
		return nil
	})
	poisoned, err := pubsub.Subscribe(context.Background(), "poison")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = router.Run(context.Background()) }()
	<-router.Running()
	defer router.Close()
	if err := pubsub.Publish("in", message.NewMessage("good-1", []byte("ok")), message.NewMessage("bad-1", []byte("bad"))); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-poisoned:
		m.Ack()
		if m.UUID != "bad-1" || m.Metadata.Get(middleware.PoisonReasonKey) != "bad payload" {
			t.Fatalf("poisoned %s with %v", m.UUID, m.Metadata)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing poisoned")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := store.Stats(context.Background(), modelevent.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if st.ByStatus[modelevent.StatusSucceeded] == 1 && st.ByStatus[modelevent.StatusPoisoned] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rows by status: %v", st.ByStatus)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// failingStore fails every write.
type failingStore struct{ modelevent.Store }

func (failingStore) Write(context.Context, []modelevent.Change) error {
	return errors.New("disk full")
}

// TestStoreFailureNacks: a row that cannot be stored nacks the message after the
// write timeout and never poisons it; while the store stays down the next delivery does
// not run its handler; Close returns by its deadline and counts the rows not stored.
func TestStoreFailureNacks(t *testing.T) {
	rec, err := middleware.NewRecorder(failingStore{}, middleware.RecorderConfig{WriteTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pubsub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	chain, err := middleware.Chain{Recorder: rec, PoisonPublisher: pubsub, PoisonTopic: "poison"}.Middleware()
	if err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int64
	h := chain(func(msg *message.Message) ([]*message.Message, error) { runs.Add(1); return nil, nil })
	for i := 0; i < 2; i++ {
		msg := message.NewMessage("m1", []byte("x"))
		msg.SetContext(middleware.ContextWithConsumer(context.Background(), "h", "t"))
		start := time.Now()
		_, err = h(msg)
		if !errors.Is(err, middleware.ErrNotRecorded) {
			t.Fatalf("delivery %d: err = %v, want ErrNotRecorded", i, err)
		}
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Fatalf("delivery %d nacked after %v, before the write timeout: a hot loop", i, d)
		}
	}
	if runs.Load() != 1 {
		t.Fatalf("handler ran %d times; with the store down the second delivery must not run it", runs.Load())
	}
	if rec.Healthy() {
		t.Fatal("recorder reports a failing store healthy")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = rec.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "1 changes not stored") {
		t.Fatalf("Close with the store down: err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v past its 300ms deadline", d)
	}
}

func TestRecorderConfigValidate(t *testing.T) {
	err := middleware.RecorderConfig{Mode: "lazy"}.Validate()
	if err == nil || err.Error() != `record.mode: "lazy" is not a record mode (accepted: durable, buffered)` {
		t.Fatalf("err = %v", err)
	}
}
