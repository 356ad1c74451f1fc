//go:build unix

package bus

import (
	"context"
	"errors"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

type discardStore struct{}

func (discardStore) Write(context.Context, []modelevent.Change) error { return nil }
func (discardStore) Get(context.Context, string) (modelevent.ModelEvent, error) {
	return modelevent.ModelEvent{}, modelevent.ErrNotFound
}
func (discardStore) List(context.Context, modelevent.Filter, modelevent.ListOptions) (modelevent.Page, error) {
	return modelevent.Page{}, nil
}
func (discardStore) Stats(context.Context, modelevent.Filter) (modelevent.Stats, error) {
	return modelevent.Stats{}, nil
}
func (discardStore) Close() error { return nil }

// BenchmarkDelivery measures one delivery through a consumer's chain (poison queue,
// recording, retry, attempt, the handler) without broker or router: each message is
// handled on a new goroutine, as the Watermill router does, one at a time. ns/op and
// allocs/op are the chain's own cost per consumed message (the produced side is not in
// it); cpu-ns/op is the process's CPU time per message, which other load on the machine
// disturbs less than ns/op. Run it with -cpu 1 to leave out wake-ups across threads.
func BenchmarkDelivery(b *testing.B) {
	for _, mode := range []middleware.RecordMode{middleware.RecordDurable, middleware.RecordBuffered} {
		b.Run(string(mode), func(b *testing.B) {
			bb, err := New(context.Background(), Config{EventStore: discardStore{}, Record: RecordConfig{Mode: mode}})
			if err != nil {
				b.Fatal(err)
			}
			defer bb.Close()
			if err := bb.Handle("bench", "bench", func(context.Context, *message.Message) error { return nil }); err != nil {
				b.Fatal(err)
			}
			c := bb.consumers["bench"]
			base := middleware.ContextWithConsumer(context.Background(), "bench", "bench")
			payload := []byte(`{"id":12345,"customer":"ada","total":99.95,"items":[{"sku":"A-1","qty":2}]}`)
			done := make(chan error)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for i := 0; i < b.N; i++ {
				msg := NewMessage(payload)
				msg.Metadata.Set(modelevent.MetadataCorrelationID, msg.UUID)
				ctx, cancel := context.WithCancel(base)
				msg.SetContext(ctx)
				go func() {
					_, err := c.routed(msg)
					done <- err
				}()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				cancel()
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

func processCPU() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// TestDeliveryAbortedAfterFailedAttempt: a delivery whose attempt fails while the bus is
// closing, or whose message context ends while it waits between retries, is nacked
// with ErrAborted at once (never poisoned), though its context learns of both only
// after the attempt failed.
func TestDeliveryAbortedAfterFailedAttempt(t *testing.T) {
	for _, tc := range []string{"close during the attempt", "message context ends during the wait"} {
		t.Run(tc, func(t *testing.T) {
			bb, err := New(context.Background(), Config{EventStore: discardStore{},
				Retry: middleware.RetryConfig{MaxRetries: 3, InitialInterval: time.Minute, MaxInterval: time.Minute}})
			if err != nil {
				t.Fatal(err)
			}
			defer bb.Close()
			running, release := make(chan struct{}), make(chan struct{})
			var calls atomic.Int32
			if err := bb.Handle("h", "t", func(ctx context.Context, _ *message.Message) error {
				if calls.Add(1) == 1 {
					close(running)
					<-release
				}
				if ctx.Err() != nil {
					t.Errorf("the attempt's context was cancelled: %v", ctx.Err())
				}
				return errors.New("no")
			}); err != nil {
				t.Fatal(err)
			}
			c := bb.consumers["h"]
			parent, cancelParent := context.WithCancel(middleware.ContextWithConsumer(context.Background(), "h", "t"))
			defer cancelParent()
			msg := NewMessage([]byte("x"))
			msg.SetContext(parent)
			result := make(chan error, 1)
			go func() { _, err := c.routed(msg); result <- err }()
			<-running
			if tc == "close during the attempt" {
				bb.stopDelivery() // what Close does first
				close(release)
			} else {
				close(release)
				time.Sleep(50 * time.Millisecond) // into the retry wait
				cancelParent()
			}
			select {
			case err := <-result:
				if !errors.Is(err, middleware.ErrAborted) {
					t.Fatalf("err = %v, want ErrAborted", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the delivery waited out the retry backoff")
			}
			if n := calls.Load(); n != 1 {
				t.Fatalf("%d attempts, want 1", n)
			}
		})
	}
}
