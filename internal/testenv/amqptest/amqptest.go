// Package amqptest gives tests the shared RabbitMQ broker (EVENTBUS_TEST_AMQP_DSN,
// default amqp://guest:guest@127.0.0.1:5672/) and deletes the queues and exchanges
// they declared on it.
package amqptest

import (
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/go-eventbus/eventbus/internal/testenv"
)

// DefaultURL is the broker of a developer machine and of CI.
const DefaultURL = "amqp://guest:guest@127.0.0.1:5672/"

// URL returns the shared broker's URL. It skips t loudly (fails it under
// EVENTBUS_REQUIRE_SERVICES=1) unless the broker at that URL accepts a connection.
func URL(t testing.TB) string {
	t.Helper()
	url := testenv.DSN("amqp", DefaultURL)
	conn, err := amqp091.DialConfig(url, amqp091.Config{Dial: amqp091.DefaultDial(3 * time.Second)})
	if err == nil {
		_ = conn.Close()
	}
	testenv.RequireService(t, "amqp", err)
	return url
}

// Cleanup deletes, when t ends, the queues and then the exchanges named (those that
// exist: a missing one is not an error).
func Cleanup(t testing.TB, url string, exchanges, queues []string) {
	t.Cleanup(func() {
		conn, err := amqp091.DialConfig(url, amqp091.Config{Dial: amqp091.DefaultDial(3 * time.Second)})
		if err != nil {
			t.Logf("amqp cleanup: %v", err)
			return
		}
		defer conn.Close()
		del := func(kind, name string, f func(*amqp091.Channel) error) {
			ch, err := conn.Channel() // a failed delete closes its channel
			if err != nil {
				t.Logf("amqp cleanup: channel: %v", err)
				return
			}
			defer ch.Close()
			if err := f(ch); err != nil {
				t.Logf("amqp cleanup: delete %s %s: %v", kind, name, err)
			}
		}
		for _, q := range queues {
			del("queue", q, func(ch *amqp091.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
		}
		for _, x := range exchanges {
			del("exchange", x, func(ch *amqp091.Channel) error { return ch.ExchangeDelete(x, false, false) })
		}
	})
}
