package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestScheduledRetryFreesThePartition: on one partition, the first of 1,000 messages
// fails 3 times with 1s between attempts. Inline, the 999 behind it wait through the
// 3s of backoff; scheduled, they are handled while it waits in the store, and it still
// ends succeeded with 4 attempts. The test logs both completion times
// (docs/retries.md).
func TestScheduledRetryFreesThePartition(t *testing.T) {
	const total = 1000
	results := map[middleware.RetryMode]time.Duration{}
	for _, mode := range []middleware.RetryMode{middleware.RetryInline, middleware.RetryScheduled} {
		t.Run(string(mode), func(t *testing.T) {
			topic := "scheduled." + watermill.NewShortUUID()
			hosts := startKafka(t, kfake.SeedTopics(1, topic))
			b, err := bus.New(context.Background(), bus.Config{
				Backend:         "kafka",
				BackendSettings: settings(hosts),
				Store:           bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "events.db")},
				Retry: middleware.RetryConfig{MaxRetries: 3, InitialInterval: time.Second, MaxInterval: time.Second, Multiplier: 1,
					Mode: mode},
				Scheduler:       bus.SchedulerConfig{PollInterval: 50 * time.Millisecond},
				PoisonTopic:     "scheduled.poison." + watermill.NewShortUUID(),
				ShutdownTimeout: 20 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			var others atomic.Int64
			var flakyRuns atomic.Int64
			var warm atomic.Bool
			if err := b.Handle("orders", topic, func(ctx context.Context, msg *message.Message) error {
				switch string(msg.Payload) {
				case "warm-up":
					warm.Store(true)
				case "flaky":
					if flakyRuns.Add(1) <= 3 {
						return errors.New("downstream unavailable")
					}
				default:
					others.Add(1)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			bustest.Start(t, b, 30*time.Second)
			// The group's assignment takes a moment: the measure starts once it is there.
			if err := b.Publish(context.Background(), topic, message.NewMessage("", []byte("warm-up"))); err != nil {
				t.Fatal(err)
			}
			bustest.WaitUntil(t, 60*time.Second, "the warm-up message handled", warm.Load)
			msgs := []*message.Message{message.NewMessage("", []byte("flaky"))}
			for i := 1; i < total; i++ {
				msgs = append(msgs, message.NewMessage("", []byte(fmt.Sprint(i))))
			}
			start := time.Now()
			if err := b.Publish(context.Background(), topic, msgs...); err != nil {
				t.Fatal(err)
			}
			bustest.WaitUntil(t, 120*time.Second, "the 999 other messages handled", func() bool { return others.Load() == total-1 })
			took := time.Since(start)
			results[mode] = took
			rows := bustest.WaitRows(t, 60*time.Second, "the flaky message succeeded", b.Store(),
				modelevent.Filter{Topic: topic, Direction: modelevent.Consumed, MessageUUID: msgs[0].UUID}, bustest.OneRowIn(modelevent.StatusSucceeded))
			flakyDone := time.Since(start)
			if rows[0].Attempts != 4 {
				t.Fatalf("flaky row: %d attempts, want 4", rows[0].Attempts)
			}
			t.Logf("%s: 999 others handled %v after the publish, the flaky one succeeded after %v (4 attempts)", mode, took.Round(time.Millisecond), flakyDone.Round(time.Millisecond))
		})
	}
	in, sc := results[middleware.RetryInline], results[middleware.RetryScheduled]
	if in == 0 || sc == 0 {
		return
	}
	if in < 3*time.Second {
		t.Errorf("inline: the others were handled in %v, before the 3s of backoff of the message ahead of them", in)
	}
	if sc >= in {
		t.Errorf("scheduled: the others took %v, inline %v: the scheduled retry did not free the partition", sc, in)
	}
}
