package middleware_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/middleware"
)

// BenchmarkRecorder measures rows/s through a Recorder into SQLite from 16 goroutines.
func BenchmarkRecorder(b *testing.B) {
	for _, mode := range []middleware.RecordMode{middleware.RecordBuffered, middleware.RecordDurable} {
		b.Run(string(mode), func(b *testing.B) {
			store := openStore(b)
			rec, _ := middleware.NewRecorder(store, middleware.RecorderConfig{Mode: mode})
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			per := b.N / 16
			for g := 0; g < 16; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < per; i++ {
						m := message.NewMessage(watermill.NewUUID(), []byte(`{"id":1}`))
						c := rec.ProducedChange("t", m, time.Now(), nil)
						rec.RecordDurably(context.Background(), c)
					}
				}()
			}
			wg.Wait()
			rec.Close(context.Background())
			b.ReportMetric(float64(per*16)/time.Since(start).Seconds(), "rows/s")
		})
	}
}
