package amqp

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/go-eventbus/eventbus/internal/testenv"
)

// testURL is the broker the tests use: EVENTBUS_TEST_AMQP_DSN or the local default.
func testURL() string { return testenv.DSN("amqp", DefaultURL) }

var (
	probeOnce sync.Once
	probeErr  error

	declaredMu sync.Mutex
	declared   = map[[2]string]bool{}
)

// probe dials the test broker once.
func probe() error {
	probeOnce.Do(func() {
		conn, err := amqp091.DialConfig(testURL(), amqp091.Config{Dial: amqp091.DefaultDial(3 * time.Second)})
		if err != nil {
			probeErr = fmt.Errorf("dial %s: %w", redact(testURL()), err)
			return
		}
		_ = conn.Close()
	})
	return probeErr
}

// brokerURL returns the test broker's URL, or skips t (fails it under
// EVENTBUS_REQUIRE_SERVICES=1) when the broker is unreachable.
func brokerURL(t testing.TB) string {
	t.Helper()
	testenv.RequireService(t, "amqp", probe())
	return testURL()
}

// TestMain deletes every exchange and queue the tests declared. Without a broker the
// examples, which need one and cannot skip, are left out (loudly).
func TestMain(m *testing.M) {
	flag.Parse()
	declareHookMu.Lock()
	declareHook = func(kind, name string) {
		declaredMu.Lock()
		declared[[2]string{kind, name}] = true
		declaredMu.Unlock()
	}
	declareHookMu.Unlock()
	if err := probe(); err != nil && !testenv.ServicesRequired() {
		if f := flag.Lookup("test.run"); f != nil && f.Value.String() == "" {
			fmt.Fprintf(os.Stderr, "SKIPPED: the examples of backends/amqp need RabbitMQ: %v (set %s)\n", err, testenv.EnvVar("amqp"))
			_ = flag.Set("test.run", "^Test")
		}
	}
	code := m.Run()
	if err := deleteDeclared(); err != nil {
		fmt.Fprintf(os.Stderr, "amqp tests: cleanup: %v\n", err)
	}
	os.Exit(code)
}

// deleteDeclared deletes the queues, then the exchanges, the tests declared.
func deleteDeclared() error {
	declaredMu.Lock()
	defer declaredMu.Unlock()
	if len(declared) == 0 || probe() != nil {
		return nil
	}
	conn, err := amqp091.Dial(testURL())
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, kind := range []string{"queue", "exchange"} {
		for k := range declared {
			if k[0] != kind {
				continue
			}
			ch, err := conn.Channel()
			if err != nil {
				return err
			}
			if kind == "queue" {
				_, err = ch.QueueDelete(k[1], false, false, false)
			} else {
				err = ch.ExchangeDelete(k[1], false, false)
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "amqp tests: delete %s %q: %v\n", kind, k[1], err)
			}
			_ = ch.Close()
		}
	}
	return nil
}
