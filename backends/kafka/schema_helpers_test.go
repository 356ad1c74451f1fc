package kafka_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/go-eventbus/eventbus/backends/kafka/schemaregistrytest"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/modelevent"
)

// RegistryEnv names a real schema registry to test against instead of the in-process
// schemaregistrytest one.
const RegistryEnv = "EVENTBUS_TEST_SCHEMA_REGISTRY_URL"

// startRegistry returns the registry URL to test against and, for the in-process one,
// the registry itself (nil with RegistryEnv).
func startRegistry(t testing.TB) (string, *schemaregistrytest.Registry) {
	t.Helper()
	if u := strings.TrimSpace(os.Getenv(RegistryEnv)); u != "" {
		c := http.Client{Timeout: 3 * time.Second}
		resp, err := c.Get(strings.TrimSuffix(u, "/") + "/subjects")
		if err == nil {
			_ = resp.Body.Close()
		} else {
			err = errors.Join(errors.New(RegistryEnv+"="+u), err)
		}
		testenv.RequireService(t, "schema-registry", err)
		return u, nil
	}
	reg := schemaregistrytest.New()
	t.Cleanup(reg.Close)
	return reg.URL(), reg
}

// register registers an Avro schema under subject through the REST API and returns
// its id.
func register(t testing.TB, url, subject, schema string) int {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := cl.CreateSchema(context.Background(), subject, sr.Schema{Schema: schema, Type: sr.TypeAvro})
	if err != nil {
		t.Fatalf("register %s: %v", subject, err)
	}
	return ss.ID
}

// writeSchema writes an .avsc file and returns its path.
func writeSchema(t testing.TB, name, schema string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(schema), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newSchemaBus starts a bus on hosts with schema_registry_url and registry settings,
// its rows in a fresh SQLite file. Handlers are added by fn before it runs.
func newSchemaBus(t testing.TB, hosts []string, url string, registry map[string]any, fn func(b *bus.Bus)) *bus.Bus {
	t.Helper()
	b, err := bus.New(context.Background(), bus.Config{
		Backend:         "kafka",
		BackendSettings: settings(hosts, "schema_registry_url", url, "schema_registry", registry),
		Store:           bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "events.db")},
		PoisonTopic:     "schema.poison." + watermill.NewShortUUID(),
		ShutdownTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if fn != nil {
		fn(b)
	}
	go func() { _ = b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case <-time.After(20 * time.Second):
		t.Fatal("bus did not start")
	}
	return b
}

// waitRows polls b's store until f matches n rows, and returns them.
func waitRows(t testing.TB, b *bus.Bus, f modelevent.Filter, n int, cond func(modelevent.ModelEvent) bool) []modelevent.ModelEvent {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		page, err := b.Store().List(context.Background(), f, modelevent.ListOptions{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var ok []modelevent.ModelEvent
		for _, e := range page.Events {
			if cond == nil || cond(e) {
				ok = append(ok, e)
			}
		}
		if len(ok) >= n {
			return ok
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited for %d rows matching %+v, have %d: %+v", n, f, len(ok), page.Events)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rawRecords reads the records of topic from the start with a plain franz-go client,
// waiting up to wait for want records.
func rawRecords(t testing.TB, hosts []string, topic string, want int, wait time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(hosts...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want && ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		fetches.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// rawProduce writes value to topic with a plain franz-go client, as another
// application (or a broken one) would, with a Watermill UUID header.
func rawProduce(t testing.TB, hosts []string, topic string, value []byte) string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(hosts...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	id := watermill.NewUUID()
	rec := &kgo.Record{Topic: topic, Value: value, Headers: []kgo.RecordHeader{{Key: "_watermill_message_uuid", Value: []byte(id)}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return id
}
