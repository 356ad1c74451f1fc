package middleware_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// BenchmarkIdempotentCheck measures the idempotency check alone on SQLite (a store
// holding 5,000 succeeded rows): each message runs the middleware, with a handler that
// does nothing, in a goroutine of its own as Watermill's router runs it, 16 at a time.
// ns/op is per message (docs/performance.md).
func BenchmarkIdempotentCheck(b *testing.B) {
	s := openStore(b)
	var seed []modelevent.Change
	for i := 0; i < 5000; i++ {
		seed = append(seed, modelevent.Change{Event: modelevent.ModelEvent{
			MessageUUID: fmt.Sprint("seed-", i), Direction: modelevent.Consumed, Topic: "t", Handler: "h",
			Status: modelevent.StatusSucceeded, Attempts: 1,
		}})
	}
	if err := s.Write(b.Context(), seed); err != nil {
		b.Fatal(err)
	}
	mw, err := middleware.Idempotent(middleware.IdempotencyConfig{Store: s, Holder: "bench", Handler: "h"})
	if err != nil {
		b.Fatal(err)
	}
	h := mw(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := h(message.NewMessage(fmt.Sprint("m-", i), nil)); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
}
