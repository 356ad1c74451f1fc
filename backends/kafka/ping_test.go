package kafka_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/go-eventbus/eventbus/backends/kafka"
	"github.com/go-eventbus/eventbus/bustest"
)

// TestPing: Ping answers on a running cluster, fails within its context (naming the
// brokers) while the broker is down, answers again once it is back on the same port,
// and returns ErrClosed after Close.
func TestPing(t *testing.T) {
	if realBrokers() != nil {
		t.Skip("stops an in-process kfake cluster; cannot stop " + BrokersEnv)
	}
	port := freePort(t)
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(filepath.Join(t.TempDir(), "kfake"))}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cluster.Close() }()
	hosts := []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	b := newBackend(t, kafka.Config{BrokerHosts: hosts, ConnectTimeout: time.Second})
	ping := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return b.Ping(ctx)
	}
	if err := ping(); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	cluster.Close()
	start := time.Now()
	err = ping()
	if err == nil || !strings.HasPrefix(err.Error(), "kafka: brokers ["+hosts[0]+"]") {
		t.Fatalf("Ping with the broker down = %v, want an error naming the brokers", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Ping took %v past its 1s context", d)
	}

	if cluster, err = kfake.NewCluster(opts...); err != nil {
		t.Fatal(err)
	}
	bustest.WaitUntil(t, 20*time.Second, "Ping to answer after the restart", func() bool { return ping() == nil })

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ping(); !errors.Is(err, kafka.ErrClosed) {
		t.Fatalf("Ping after Close = %v, want ErrClosed", err)
	}
}
