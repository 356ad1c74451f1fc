package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	_ "github.com/go-eventbus/eventbus/backends/nats"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/internal/testenv/natstest"
	"github.com/go-eventbus/eventbus/metrics"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// natsSettings returns settings for the shared NATS server with a stream prefix of t's
// own, and deletes those streams when t ends.
func natsSettings(t *testing.T) map[string]any {
	t.Helper()
	return natstest.Settings(t, "ebmetrics")
}

// TestScrapeNATS runs a bus on the shared NATS server with a known mix — 3 messages to
// handlers that succeed, fail once, and always fail (max_retries 1: poisoned), and 2
// messages waiting for a stopped consumer — then scrapes /metrics and checks every
// family of the bus and Watermill's, and the logs of the retries and poisoned messages.
func TestScrapeNATS(t *testing.T) {
	settings := natsSettings(t)
	logs := &testenv.Logs{}
	reg := prometheus.NewRegistry()
	topic := "metrics.orders." + watermill.NewShortUUID()
	idleTopic := "metrics.idle." + watermill.NewShortUUID()
	poisonTopic := "metrics.poison." + watermill.NewShortUUID()
	b, err := bus.New(context.Background(), bus.Config{
		Backend:             "nats",
		BackendSettings:     settings,
		Store:               bus.StoreConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "events.db")},
		Retry:               middleware.RetryConfig{MaxRetries: 1, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond},
		PoisonTopic:         poisonTopic,
		Metrics:             reg,
		MetricsPollInterval: 50 * time.Millisecond,
		Process:             bus.ProcessConfig{HeartbeatInterval: 100 * time.Millisecond, Name: "metrics-test"},
		Logger:              logs.Logger(slog.LevelDebug),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	var mu sync.Mutex
	tries := map[string]int{}
	must(t, b.Handle("ok", topic, func(context.Context, *message.Message) error { return nil }))
	must(t, b.Handle("flaky", topic, func(_ context.Context, m *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if tries[m.UUID]++; tries[m.UUID] == 1 {
			return errors.New("carrier timeout")
		}
		return nil
	}))
	must(t, b.Handle("bad", topic, func(context.Context, *message.Message) error { return errors.New("card declined") }))
	must(t, b.Handle("idle", idleTopic, func(context.Context, *message.Message) error { return nil }))
	go func() { _ = b.Run(context.Background()) }()
	select {
	case <-b.Running():
	case <-time.After(60 * time.Second):
		t.Fatal("bus did not start")
	}
	must(t, b.StopConsumer(context.Background(), "idle"))

	srv := httptest.NewServer(b.MetricsHandler())
	defer srv.Close()

	ctx := context.Background()
	for i := 0; i < 3; i++ {
		must(t, b.Publish(ctx, topic, bus.NewMessage([]byte(fmt.Sprintf(`{"n":%d}`, i)))))
	}
	for i := 0; i < 2; i++ {
		must(t, b.Publish(ctx, idleTopic, bus.NewMessage([]byte(`{}`))))
	}

	// The rows of the mix: 5 produced; ok 3 succeeded; flaky 3 retrying then 3
	// succeeded; bad 2×3 retrying, 3 failed, 3 poisoned.
	recorded := map[string]float64{
		"produced/published//" + topic:      3,
		"produced/published//" + idleTopic:  2,
		"consumed/succeeded/ok/" + topic:    3,
		"consumed/retrying/flaky/" + topic:  3,
		"consumed/succeeded/flaky/" + topic: 3,
		"consumed/retrying/bad/" + topic:    6,
		"consumed/failed/bad/" + topic:      3,
		"consumed/poisoned/bad/" + topic:    3,
	}
	var total float64
	for _, n := range recorded {
		total += n
	}
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(30 * time.Second)
	for {
		fams = scrape(t, srv.URL)
		got := map[string]float64{}
		for _, m := range fams["eventbus_events_recorded_total"].GetMetric() {
			l := labels(m)
			got[l["direction"]+"/"+l["status"]+"/"+l["handler"]+"/"+l["topic"]] = m.GetCounter().GetValue()
		}
		done := fmt.Sprint(got) == fmt.Sprint(recorded) && value(fams, "eventbus_consumer_backlog_messages", "handler", "idle") == 2 &&
			value(fams, "eventbus_process_heartbeat_age_seconds", "process", b.ProcessID()) >= 0 &&
			value(fams, "eventbus_recorder_queued_changes") == 0 &&
			// The backlog is polled from the broker: wait for the poll after the last ack.
			value(fams, "eventbus_consumer_backlog_messages", "handler", "ok") == 0 &&
			value(fams, "eventbus_consumer_backlog_messages", "handler", "bad") == 0
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events_recorded_total = %v, want %v; backlog of idle %v", got, recorded,
				value(fams, "eventbus_consumer_backlog_messages", "handler", "idle"))
		}
		time.Sleep(50 * time.Millisecond)
	}

	check := func(name string, want float64, kv ...string) {
		t.Helper()
		if got := value(fams, name, kv...); got != want {
			t.Errorf("%s%v = %v, want %v", name, kv, got, want)
		}
	}
	// The bus's own.
	check("eventbus_retries_total", 3, "handler", "flaky", "topic", topic)
	check("eventbus_retries_total", 3, "handler", "bad", "topic", topic)
	check("eventbus_poisoned_total", 3, "handler", "bad", "topic", topic)
	check("eventbus_store_write_errors_total", 0, "kind", "unavailable")
	check("eventbus_store_write_errors_total", 0, "kind", "rejected")
	check("eventbus_recorder_queue_capacity", 16*256)
	check("eventbus_consumer_backlog_messages", 0, "handler", "ok")
	check("eventbus_consumer_backlog_messages", 0, "handler", "bad")
	if _, ok := fams["eventbus_redeliveries_total"]; ok {
		t.Errorf("eventbus_redeliveries_total: nothing was nacked, got %v", fams["eventbus_redeliveries_total"])
	}
	batches := fams["eventbus_store_write_batch_size"].GetMetric()[0].GetHistogram()
	if batches.GetSampleSum() != total || batches.GetSampleCount() < 1 || batches.GetSampleCount() > uint64(total) {
		t.Errorf("store_write_batch_size: %d writes of %v changes, want %v changes", batches.GetSampleCount(), batches.GetSampleSum(), total)
	}
	latency := fams["eventbus_store_write_duration_seconds"].GetMetric()[0].GetHistogram()
	if latency.GetSampleCount() != batches.GetSampleCount() || latency.GetSampleSum() <= 0 {
		t.Errorf("store_write_duration_seconds: %d writes, %vs; want %d writes", latency.GetSampleCount(), latency.GetSampleSum(), batches.GetSampleCount())
	}
	if age := value(fams, "eventbus_process_heartbeat_age_seconds", "process", b.ProcessID(), "name", "metrics-test"); age > 5 {
		t.Errorf("heartbeat age %vs", age)
	}
	// Watermill's: handlers (poisoned messages are acked: success), subscribers, publishes
	// (Publish has no handler; the poison queue publishes in bad's).
	for _, h := range []string{"ok", "flaky", "bad"} {
		if n := histCount(fams, "eventbus_handler_execution_time_seconds", "handler_name", h, "success", "true"); n != 3 {
			t.Errorf("handler_execution_time_seconds{handler_name=%s,success=true}: %d, want 3", h, n)
		}
		check("eventbus_subscriber_messages_received_total", 3, "handler_name", h, "acked", "acked")
	}
	if n := histCount(fams, "eventbus_publish_time_seconds", "handler_name", "<no handler>", "success", "true"); n != 5 {
		t.Errorf("publish_time_seconds{handler_name=<no handler>}: %d, want 5", n)
	}
	if n := histCount(fams, "eventbus_publish_time_seconds", "handler_name", "bad", "success", "true"); n != 3 {
		t.Errorf("publish_time_seconds{handler_name=bad} (poison queue): %d, want 3", n)
	}
	if _, ok := fams["go_goroutines"]; ok {
		t.Error("a registry given by the user gets no Go collector from the bus")
	}
	// Only bounded labels.
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if strings.Contains(lp.GetName(), "uuid") || strings.Contains(lp.GetName(), "id") && lp.GetName() != "process" {
					t.Errorf("%s has label %s", name, lp.GetName())
				}
			}
		}
	}
	// The exposition follows Prometheus's conventions.
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}

	// Logs: every retry at debug and every poisoned message at warn, with the keys;
	// Watermill's Retry logs nothing.
	rows := map[string]string{} // message uuid + handler -> row id
	page, err := b.Store().List(ctx, modelevent.Filter{Topic: topic, Direction: modelevent.Consumed}, modelevent.ListOptions{Limit: 100})
	must(t, err)
	for _, e := range page.Events {
		rows[e.MessageUUID+"/"+e.Handler] = e.ID
	}
	retries := logs.Records(t, "eventbus: retrying handler")
	if len(retries) != 6 {
		t.Errorf("%d retry logs, want 6", len(retries))
	}
	for _, r := range retries {
		if r["level"] != "DEBUG" || r["topic"] != topic || r["attempt"] != 2.0 || r["reason"] == "" ||
			r["event_id"] != rows[fmt.Sprint(r["message_uuid"])+"/"+fmt.Sprint(r["handler"])] {
			t.Errorf("retry log %v (rows %v)", r, rows)
		}
	}
	poisoned := logs.Records(t, "eventbus: message poisoned")
	if len(poisoned) != 3 {
		t.Errorf("%d poisoned logs, want 3", len(poisoned))
	}
	for _, r := range poisoned {
		if r["level"] != "WARN" || r["handler"] != "bad" || r["topic"] != topic || r["reason"] != "card declined" || r["event_id"] == "" {
			t.Errorf("poisoned log %v", r)
		}
		if id := rows[fmt.Sprint(r["message_uuid"])+"/bad"]; r["event_id"] != id {
			t.Errorf("poisoned log names event %v, the row is %s", r["event_id"], id)
		}
	}
	if n := len(logs.Records(t, "Error occurred, retrying")); n != 0 {
		t.Errorf("Watermill's Retry logged %d times", n)
	}
}

// TestMetricsUnit checks what the NATS test cannot provoke: write errors by kind and
// redeliveries by reason, and that a second registration on one registry fails.
func TestMetricsUnit(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{})
	must(t, err)
	m.StoreWritten(3, time.Millisecond, errors.New("connection refused"))
	m.StoreWritten(3, time.Millisecond, fmt.Errorf("write: %w", &modelevent.RejectedError{Changes: map[int]error{1: errors.New("too long")}}))
	m.StoreWritten(2, time.Millisecond, nil)
	m.Redelivered("h", "t", metrics.ReasonNotRecorded)
	m.Redelivered("h", "t", metrics.ReasonNotRecorded)
	m.Redelivered("h", "t", metrics.ReasonAborted)
	want := `
# HELP eventbus_redeliveries_total Deliveries this process nacked, which the broker delivers again, by topic, handler and reason (not_recorded, aborted, failed).
# TYPE eventbus_redeliveries_total counter
eventbus_redeliveries_total{handler="h",reason="aborted",topic="t"} 1
eventbus_redeliveries_total{handler="h",reason="not_recorded",topic="t"} 2
# HELP eventbus_store_write_errors_total Failed store writes of the recorder, by kind: unavailable (retried) or rejected (changes refused for their data).
# TYPE eventbus_store_write_errors_total counter
eventbus_store_write_errors_total{kind="rejected"} 1
eventbus_store_write_errors_total{kind="unavailable"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "eventbus_redeliveries_total", "eventbus_store_write_errors_total"); err != nil {
		t.Error(err)
	}
	if _, err := metrics.New(reg, metrics.Options{}); err == nil {
		t.Error("a second New on one registry succeeded")
	}
	shared := prometheus.NewRegistry()
	for _, name := range []string{"one", "two"} {
		if _, err := metrics.New(prometheus.WrapRegistererWith(prometheus.Labels{"bus": name}, shared), metrics.Options{}); err != nil {
			t.Errorf("bus %s on a shared registry, wrapped: %v", name, err)
		}
	}
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	must(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(t, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s: %s", resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// find returns the metric of family name whose labels include kv; nil if none.
func find(fams map[string]*dto.MetricFamily, name string, kv ...string) *dto.Metric {
	for _, m := range fams[name].GetMetric() {
		l := labels(m)
		ok := true
		for i := 0; i+1 < len(kv); i += 2 {
			ok = ok && l[kv[i]] == kv[i+1]
		}
		if ok {
			return m
		}
	}
	return nil
}

// value is the value of a counter or gauge; -1 when there is no such metric.
func value(fams map[string]*dto.MetricFamily, name string, kv ...string) float64 {
	m := find(fams, name, kv...)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	default:
		return m.GetGauge().GetValue()
	}
}

func histCount(fams map[string]*dto.MetricFamily, name string, kv ...string) uint64 {
	return find(fams, name, kv...).GetHistogram().GetSampleCount()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
