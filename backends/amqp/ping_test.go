package amqp

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPing: Ping answers on the test broker, fails at once naming the connection while
// a proxy cuts it, answers again once the connections are back, and returns ErrClosed
// after Close.
func TestPing(t *testing.T) {
	proxy, proxied := viaProxy(t, brokerURL(t))
	b, err := New(context.Background(), Config{
		URL:            proxied,
		ConnectTimeout: 2 * time.Second,
		Reconnect:      ReconnectConfig{InitialInterval: 50 * time.Millisecond, Multiplier: 1.5, MaxInterval: 300 * time.Millisecond},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	proxy.Cut()
	waitUntil(t, "Ping to fail while the broker is cut off", func() bool {
		err = b.Ping(ctx)
		return err != nil
	})
	if !strings.HasPrefix(err.Error(), "amqp: ") || !strings.Contains(err.Error(), "disconnected") {
		t.Fatalf("Ping while cut = %v, want it to say amqp is disconnected", err)
	}
	proxy.Restore()
	waitUntil(t, "Ping to answer after the restore", func() bool {
		err = b.Ping(ctx)
		return err == nil
	})

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close = %v, want ErrClosed", err)
	}
}
