package sqlbackend_test

import (
	"context"
	"os"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	_ "github.com/go-eventbus/eventbus/backends/sql"
	"github.com/go-eventbus/eventbus/bus"
)

// TestWatermillUniversal runs Watermill's universal Pub/Sub suite on publishers and
// subscribers built through the registered factory from a backend_settings map, on
// PostgreSQL and on MySQL/MariaDB.
//
// Features: consumer groups, exactly-once delivery within a group (the group's offset
// row is locked while a batch is handled, so two subscribers never get the same
// message), guaranteed order (one reader per group at a time, in commit order), and
// persistence. ExactlyOnceDelivery is false: a batch whose offset commit is lost (a
// connection cut, a crash) is delivered again, which TestFaultPostgres shows; it also
// lets the suite run TestContinueAfterSubscribeClose and TestConcurrentClose, which it
// skips for exactly-once Pub/Subs. RestartServiceCommand is left empty: TestReconnect needs to restart the
// shared database, which other tests use; TestFaultPostgres covers reconnection through
// a TCP proxy instead.
func TestWatermillUniversal(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.driver, func(t *testing.T) {
			t.Parallel()
			dsn := tg.dsn(t)
			construct := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
				b, err := bus.OpenBackend(context.Background(), "sql", settings(tg.driver, dsn, "ack_deadline", "3s"), bus.BackendOptions{})
				if err != nil {
					t.Fatalf("open backend: %v", err)
				}
				t.Cleanup(func() { _ = b.Close() })
				sub, err := b.Subscriber(group)
				if err != nil {
					t.Fatalf("subscriber: %v", err)
				}
				return b.Publisher(), sub
			}
			tests.TestPubSub(t, tests.Features{
				ConsumerGroups:      true,
				ExactlyOnceDelivery: false,
				GuaranteedOrder:     true,
				Persistent:          true,
				// The full suite (10,000-message runs) takes about a minute on two cores;
				// EVENTBUS_TEST_SQL_FULL=1 runs it, otherwise its -short sizes are used.
				ForceShort: os.Getenv("EVENTBUS_TEST_SQL_FULL") != "1",
			}, func(t *testing.T) (message.Publisher, message.Subscriber) {
				return construct(t, "universal")
			}, construct)
		})
	}
}
