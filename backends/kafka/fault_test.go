package kafka_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/bustest"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestBrokerRestart stops the broker while events are published and consumed, then
// starts it again on the same port with the same data: publishing resumes (the
// failures while it is down are returned and retried by the caller), consumption
// resumes, every acknowledged publish has its succeeded consumed row, and no message
// has two rows.
func TestBrokerRestart(t *testing.T) {
	if realBrokers() != nil {
		t.Skip("restarts an in-process kfake cluster; cannot restart " + BrokersEnv)
	}
	dir := t.TempDir()
	port := freePort(t)
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(filepath.Join(dir, "kfake"))}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	var clusterMu sync.Mutex
	t.Cleanup(func() {
		clusterMu.Lock()
		defer clusterMu.Unlock()
		if cluster != nil {
			cluster.Close()
		}
	})
	hosts := []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}

	b, err := bus.New(context.Background(), bus.Config{
		Backend:         "kafka",
		BackendSettings: settings(hosts, "partitions", 3),
		Store:           bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(dir, "events.db")},
		PoisonTopic:     "fault.poison",
		ShutdownTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	topic := "fault." + watermill.NewShortUUID()
	var handled sync.Map
	if err := b.Handle("survivor", topic, func(ctx context.Context, msg *message.Message) error {
		handled.Store(msg.UUID, true)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case <-time.After(20 * time.Second):
		t.Fatal("bus did not start")
	}

	const total = 300
	var (
		acked     sync.Map // UUIDs whose Publish returned nil
		nAcked    atomic.Int64
		pubErrors atomic.Int64
		attempted sync.Map
	)
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := 0; i < total; i++ {
			msg := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint(i)))
			attempted.Store(msg.UUID, true)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err := b.Publish(ctx, topic, msg)
				cancel()
				if err == nil {
					break
				}
				pubErrors.Add(1)
				time.Sleep(100 * time.Millisecond)
			}
			acked.Store(msg.UUID, true)
			nAcked.Add(1)
			time.Sleep(3 * time.Millisecond)
		}
	}()

	bustest.WaitUntil(t, 20*time.Second, "a third of the messages published", func() bool { return nAcked.Load() >= total/3 })
	clusterMu.Lock()
	cluster.Close()
	cluster = nil
	clusterMu.Unlock()
	t.Logf("broker stopped after %d acknowledged publishes", nAcked.Load())
	time.Sleep(2 * time.Second)
	clusterMu.Lock()
	cluster, err = kfake.NewCluster(opts...)
	clusterMu.Unlock()
	if err != nil {
		t.Fatalf("restart kfake on port %d: %v", port, err)
	}
	t.Logf("broker restarted; %d publish errors so far", pubErrors.Load())

	select {
	case <-published:
	case <-time.After(60 * time.Second):
		t.Fatalf("publishing did not resume: %d of %d acknowledged", nAcked.Load(), total)
	}
	if pubErrors.Load() == 0 {
		t.Log("no publish failed while the broker was down (all publishes fell outside the outage)")
	}
	store := b.Store()
	var consumed []modelevent.ModelEvent
	bustest.WaitUntil(t, 60*time.Second, "every acknowledged message consumed and recorded", func() bool {
		consumed = bustest.Rows(t, store, modelevent.Filter{Topic: topic, Direction: modelevent.Consumed, Statuses: []modelevent.Status{modelevent.StatusSucceeded}})
		n := 0
		for _, r := range consumed {
			if _, ok := acked.Load(r.MessageUUID); ok {
				n++
			}
		}
		return n >= total
	})
	all := bustest.Rows(t, store, modelevent.Filter{Topic: topic, Direction: modelevent.Consumed})
	seen := map[string]int{}
	redelivered := 0
	for _, r := range all {
		seen[r.MessageUUID]++
		if _, ok := attempted.Load(r.MessageUUID); !ok {
			t.Fatalf("consumed row for a message never published: %+v", r)
		}
		if r.Attempts > 1 {
			redelivered++
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("message %s has %d consumed rows, want 1", id, n)
		}
	}
	acked.Range(func(k, _ any) bool {
		if seen[k.(string)] == 0 {
			t.Errorf("acknowledged message %s has no consumed row", k)
		}
		return true
	})
	if len(all) != total {
		t.Fatalf("%d consumed rows, want %d", len(all), total)
	}
	t.Logf("%d published (%d publish errors retried), %d consumed rows, %d redelivered (attempts > 1)",
		total, pubErrors.Load(), len(all), redelivered)
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
