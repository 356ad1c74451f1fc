//go:build unix

package bus

import (
	"context"
	"syscall"
	"testing"

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
