package kafka_test

import (
	"context"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/hamba/avro/v2"

	"github.com/go-eventbus/eventbus/backends/kafka"
	"github.com/go-eventbus/eventbus/backends/kafka/schemaregistrytest"
	"github.com/go-eventbus/eventbus/bus"
	"github.com/go-eventbus/eventbus/modelevent"
)

const orderV1 = `{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"long"},
  {"name":"total","type":"double"},
  {"name":"note","type":["null","string"],"default":null}]}`

// orderV2 adds a field with a default: BACKWARD compatible with orderV1.
const orderV2 = `{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"long"},
  {"name":"total","type":"double"},
  {"name":"note","type":["null","string"],"default":null},
  {"name":"currency","type":"string","default":"EUR"}]}`

// order is what the application publishes with NewModelMessage.
type order struct {
	ID    int64   `json:"id"`
	Total float64 `json:"total"`
}

// collect returns a handler that sends payloads to the returned channel.
func collect() (bus.HandlerFunc, chan string) {
	ch := make(chan string, 16)
	return func(ctx context.Context, msg *message.Message) error {
		ch <- string(msg.Payload)
		return nil
	}, ch
}

func recv(t *testing.T, ch chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(20 * time.Second):
		t.Fatal("handler got nothing")
		return ""
	}
}

// TestSchemaRoundTrip: NewModelMessage's JSON goes to Kafka as Confluent wire-format Avro
// (magic byte, schema id, Avro body, read with a plain client), the handler gets JSON
// again, and both rows store JSON with the schema id in their metadata.
func TestSchemaRoundTrip(t *testing.T) {
	hosts := startKafka(t)
	url, _ := startRegistry(t)
	topic := "sr.orders." + watermill.NewShortUUID()
	id := register(t, url, topic+"-value", orderV1)

	h, got := collect()
	b := newSchemaBus(t, hosts, url, map[string]any{"topics": []any{topic}}, func(b *bus.Bus) {
		if err := b.Handle("billing", topic, h); err != nil {
			t.Fatal(err)
		}
	})
	msg, err := bus.NewModelMessage(order{ID: 42, Total: 9.5})
	if err == nil {
		err = b.Publish(context.Background(), topic, msg)
	}
	uuid := msg.UUID
	if err != nil {
		t.Fatal(err)
	}
	if p := recv(t, got); p != `{"id":42,"total":9.5,"note":null}` {
		t.Fatalf("handler got %s", p)
	}

	recs := rawRecords(t, hosts, topic, 1, 10*time.Second)
	if len(recs) != 1 {
		t.Fatalf("raw consumer read %d records", len(recs))
	}
	v := recs[0].Value
	if len(v) < 5 || v[0] != 0 || int(binary.BigEndian.Uint32(v[1:5])) != id {
		t.Fatalf("wire value % x: want magic byte 0 and schema id %d", v, id)
	}
	var body map[string]any
	if err := avro.Unmarshal(avro.MustParse(orderV1), v[5:], &body); err != nil {
		t.Fatalf("body is not Avro of the schema: %v", err)
	}
	if body["id"] != int64(42) || body["total"] != 9.5 {
		t.Fatalf("Avro body = %v", body)
	}

	rows := waitRows(t, b, modelevent.Filter{MessageUUID: uuid}, 2, func(e modelevent.ModelEvent) bool {
		return e.Status == modelevent.StatusSucceeded || e.Status == modelevent.StatusPublished
	})
	for _, e := range rows {
		if !strings.HasPrefix(string(e.Payload), `{"id":42`) {
			t.Errorf("%s row payload = %q, want JSON", e.Direction, e.Payload)
		}
		if e.Metadata[kafka.MetadataSchemaID] != strconv.Itoa(id) {
			t.Errorf("%s row metadata %s = %q, want %d", e.Direction, kafka.MetadataSchemaID, e.Metadata[kafka.MetadataSchemaID], id)
		}
	}
}

// TestSchemaBadPayload: a payload that does not match the schema fails Publish with an
// error naming topic, schema, subject and field; nothing reaches Kafka and the row says
// publish_failed.
func TestSchemaBadPayload(t *testing.T) {
	hosts := startKafka(t)
	url, _ := startRegistry(t)
	topic := "sr.bad." + watermill.NewShortUUID()
	id := register(t, url, topic+"-value", orderV1)
	b := newSchemaBus(t, hosts, url, map[string]any{"topics": topic}, nil)

	msg := message.NewMessage(watermill.NewUUID(), []byte(`{"id":1,"total":"12.50"}`))
	err := b.Publish(context.Background(), topic, msg)
	want := `kafka: publish "` + topic + `": encode with schema ` + strconv.Itoa(id) + ` (` + topic + `-value): field "total": want double, got string "12.50"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v\nwant it to contain %s", err, want)
	}
	rows := waitRows(t, b, modelevent.Filter{MessageUUID: msg.UUID}, 1, nil)
	if rows[0].Status != modelevent.StatusPublishFailed {
		t.Fatalf("row status %s, want %s", rows[0].Status, modelevent.StatusPublishFailed)
	}
	// A good message afterwards is the only record on the topic.
	if err := b.Publish(context.Background(), topic, message.NewMessage(watermill.NewUUID(), []byte(`{"id":2,"total":1}`))); err != nil {
		t.Fatal(err)
	}
	if recs := rawRecords(t, hosts, topic, 2, 2*time.Second); len(recs) != 1 {
		t.Fatalf("topic holds %d records, want only the good one", len(recs))
	}
}

// TestSchemaBadWire: values that are not wire format, carry an unknown schema id or a
// body that does not decode are poisoned with the reason; the handler never runs.
func TestSchemaBadWire(t *testing.T) {
	hosts := startKafka(t)
	url, _ := startRegistry(t)
	topic := "sr.wire." + watermill.NewShortUUID()
	id := register(t, url, topic+"-value", orderV1)
	var mu sync.Mutex
	var ran []string
	b := newSchemaBus(t, hosts, url, map[string]any{"topics": []any{topic}}, func(b *bus.Bus) {
		_ = b.Handle("billing", topic, func(ctx context.Context, msg *message.Message) error {
			mu.Lock()
			ran = append(ran, string(msg.Payload))
			mu.Unlock()
			return nil
		})
	})
	wire := func(id uint32, body ...byte) []byte {
		out := []byte{0, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(out[1:], id)
		return append(out, body...)
	}
	cases := []struct {
		value  []byte
		reason string
	}{
		{[]byte(`{"id":1,"total":2}`), "not in Confluent wire format"},
		{wire(987654, 2, 0), "schema id 987654 is not in the registry"},
		{wire(uint32(id), 0x80), "decode with schema " + strconv.Itoa(id)},
	}
	for _, c := range cases {
		uuid := rawProduce(t, hosts, topic, c.value)
		rows := waitRows(t, b, modelevent.Filter{MessageUUID: uuid, Direction: modelevent.Consumed}, 1, func(e modelevent.ModelEvent) bool {
			return e.Status == modelevent.StatusPoisoned
		})
		if !strings.Contains(rows[0].LastError, c.reason) {
			t.Errorf("poisoned with %q, want the reason %q", rows[0].LastError, c.reason)
		}
		if string(rows[0].Payload) != string(c.value) {
			t.Errorf("row payload % x, want the raw bytes % x", rows[0].Payload, c.value)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ran) != 0 {
		t.Fatalf("handler ran on %q", ran)
	}
}

// TestSchemaRegistryDown: a registry that is down when a message arrives delays it (no
// poison, no handler); once the registry is back the message is decoded and handled.
func TestSchemaRegistryDown(t *testing.T) {
	url, reg := startRegistry(t)
	if reg == nil {
		t.Skip("stops the in-process registry; cannot stop " + RegistryEnv)
	}
	hosts := startKafka(t)
	topic := "sr.down." + watermill.NewShortUUID()
	register(t, url, topic+"-value", orderV1)
	pub := newSchemaBus(t, hosts, url, map[string]any{"topics": []any{topic}}, nil)
	msg, err := bus.NewModelMessage(order{ID: 7, Total: 1})
	if err == nil {
		err = pub.Publish(context.Background(), topic, msg)
	}
	uuid := msg.UUID
	if err != nil {
		t.Fatal(err)
	}

	h, got := collect()
	sub := newSchemaBus(t, hosts, url, map[string]any{"topics": []any{topic}}, func(b *bus.Bus) {
		_ = b.Handle("late", topic, h)
	})
	reg.SetDown(true)
	select {
	case p := <-got:
		t.Fatalf("handled %s while the registry was down", p)
	case <-time.After(2 * time.Second):
	}
	page, err := sub.Store().List(context.Background(), modelevent.Filter{MessageUUID: uuid}, modelevent.ListOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Events {
		if e.Status == modelevent.StatusPoisoned {
			t.Fatalf("poisoned while the registry was down: %s", e.LastError)
		}
	}
	reg.SetDown(false)
	if p := recv(t, got); p != `{"id":7,"total":1,"note":null}` {
		t.Fatalf("handler got %s", p)
	}
}

// TestSchemaAutoRegister: a topic's local schema must be registered unless
// auto_register is on, which registers it on the first publish.
func TestSchemaAutoRegister(t *testing.T) {
	hosts := startKafka(t)
	url, _ := startRegistry(t)
	path := writeSchema(t, "order.avsc", orderV1)

	off := "sr.noauto." + watermill.NewShortUUID()
	b := newSchemaBus(t, hosts, url, map[string]any{"schemas": map[string]any{off: path}}, nil)
	err := b.Publish(context.Background(), off, message.NewMessage(watermill.NewUUID(), []byte(`{"id":1,"total":2}`)))
	for _, w := range []string{`kafka: publish "` + off + `"`, "is not registered under subject " + off + "-value", "auto_register is off"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("err = %v, want it to contain %q", err, w)
		}
	}

	on := "sr.auto." + watermill.NewShortUUID()
	h, got := collect()
	b2 := newSchemaBus(t, hosts, url, map[string]any{"schemas": map[string]any{on: path}, "auto_register": true}, func(b *bus.Bus) {
		_ = b.Handle("billing", on, h)
	})
	msg, err := bus.NewModelMessage(order{ID: 3, Total: 4})
	if err == nil {
		err = b2.Publish(context.Background(), on, msg)
	}
	if err != nil {
		t.Fatal(err)
	}
	if p := recv(t, got); p != `{"id":3,"total":4,"note":null}` {
		t.Fatalf("handler got %s", p)
	}
	// Registered under <topic>-value: the registry gives the same id again.
	if id := register(t, url, on+"-value", orderV1); id <= 0 {
		t.Fatalf("id %d", id)
	}
}

// TestSchemaEvolution: after v2 adds a field with a default, a consumer that reads with
// v2 (its local schema) decodes messages written with v1 with the default filled in,
// and new messages with the value written.
func TestSchemaEvolution(t *testing.T) {
	hosts := startKafka(t)
	url, reg := startRegistry(t)
	topic := "sr.evolve." + watermill.NewShortUUID()
	id1 := register(t, url, topic+"-value", orderV1)
	old := newSchemaBus(t, hosts, url, map[string]any{"topics": []any{topic}}, nil)
	msg, err := bus.NewModelMessage(order{ID: 1, Total: 10})
	if err == nil {
		err = old.Publish(context.Background(), topic, msg)
	}
	if err != nil {
		t.Fatal(err)
	}

	id2 := register(t, url, topic+"-value", orderV2)
	if id2 == id1 {
		t.Fatalf("v2 got v1's id %d", id1)
	}
	h, got := collect()
	cur := newSchemaBus(t, hosts, url, map[string]any{"schemas": map[string]any{topic: writeSchema(t, "v2.avsc", orderV2)}}, func(b *bus.Bus) {
		_ = b.Handle("reader", topic, h)
	})
	if p := recv(t, got); p != `{"id":1,"total":10,"note":null,"currency":"EUR"}` {
		t.Fatalf("v1 message read with v2: %s", p)
	}
	msg = message.NewMessage(watermill.NewUUID(), []byte(`{"id":2,"total":20,"currency":"USD"}`))
	if err := cur.Publish(context.Background(), topic, msg); err != nil {
		t.Fatal(err)
	}
	if p := recv(t, got); p != `{"id":2,"total":20,"note":null,"currency":"USD"}` {
		t.Fatalf("v2 message: %s", p)
	}
	if msg.Metadata.Get(kafka.MetadataSchemaID) != strconv.Itoa(id2) {
		t.Fatalf("published with schema %s, want v2's id %d", msg.Metadata.Get(kafka.MetadataSchemaID), id2)
	}

	if reg != nil {
		// A new required field without a default breaks BACKWARD compatibility.
		bad := strings.Replace(orderV2, `"default":"EUR"}`, `"default":"EUR"},
  {"name":"region","type":"string"}`, 1)
		if _, _, err := reg.Register(topic+"-value", bad); err == nil || !strings.Contains(err.Error(), "incompatible") {
			t.Fatalf("incompatible v3: err = %v", err)
		}
	}
}

// TestSchemaRegistryStartup: bus.New fails clearly and within connect_timeout when the
// registry does not answer, answers 503, or refuses the credentials; a bad local
// schema file is named.
func TestSchemaRegistryStartup(t *testing.T) {
	hosts := startKafka(t)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer hang.Close()
	down := schemaregistrytest.New()
	defer down.Close()
	down.SetDown(true)
	authed := schemaregistrytest.New(schemaregistrytest.WithBasicAuth("shop", "s3cret"))
	defer authed.Close()
	badSchema := writeSchema(t, "bad.avsc", `{"type":"record","name":"X","fields":[{"name":"a","type":"nope"}]}`)

	cases := []struct {
		name     string
		url      string
		registry map[string]any
		want     []string
	}{
		{"no answer", hang.URL, map[string]any{"topics": "orders"}, []string{"schema registry " + hang.URL, "no answer within connect_timeout 1s"}},
		{"503", down.URL(), map[string]any{"topics": "orders"}, []string{"schema registry " + down.URL(), "503"}},
		{"no credentials", authed.URL(), map[string]any{"topics": "orders"}, []string{"credentials refused (401", "schema_registry.username"}},
		{"wrong password", authed.URL(), map[string]any{"topics": "orders", "username": "shop", "password": "nope"}, []string{"credentials refused"}},
		{"bad schema file", authed.URL(), map[string]any{"schemas": map[string]any{"orders": badSchema}, "username": "shop", "password": "s3cret"},
			[]string{"backend_settings.schema_registry.schemas.orders", badSchema}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			b, err := bus.OpenBackend(context.Background(), "kafka",
				settings(hosts, "connect_timeout", "1s", "schema_registry_url", c.url, "schema_registry", c.registry), bus.BackendOptions{})
			if err == nil {
				_ = b.Close()
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("took %v for a 1s connect_timeout", d)
			}
		})
	}
	// The right credentials work.
	b, err := bus.OpenBackend(context.Background(), "kafka",
		settings(hosts, "schema_registry_url", authed.URL(), "schema_registry", map[string]any{"topics": "orders", "username": "shop", "password": "s3cret"}), bus.BackendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Close()
}

// TestSchemaSubjectStrategies: record names the subject after the message's model (no
// local schema), topic_record after the topic and the local schema's record name.
func TestSchemaSubjectStrategies(t *testing.T) {
	hosts := startKafka(t)
	url, _ := startRegistry(t)
	model := bus.ModelName(order{})
	id := register(t, url, model, orderV1)
	topic := "sr.record." + watermill.NewShortUUID()
	h, got := collect()
	b := newSchemaBus(t, hosts, url, map[string]any{"topics": []any{topic}, "subject_strategy": "record"}, func(b *bus.Bus) {
		_ = b.Handle("billing", topic, h)
	})
	msg, err := bus.NewModelMessage(order{ID: 5, Total: 6})
	if err == nil {
		err = b.Publish(context.Background(), topic, msg)
	}
	uuid := msg.UUID
	if err != nil {
		t.Fatal(err)
	}
	if p := recv(t, got); p != `{"id":5,"total":6,"note":null}` {
		t.Fatalf("handler got %s", p)
	}
	rows := waitRows(t, b, modelevent.Filter{MessageUUID: uuid, Direction: modelevent.Produced}, 1, nil)
	if rows[0].Metadata[kafka.MetadataSchemaID] != strconv.Itoa(id) {
		t.Fatalf("schema id %s, want %d (subject %s)", rows[0].Metadata[kafka.MetadataSchemaID], id, model)
	}
	err = b.Publish(context.Background(), topic, message.NewMessage(watermill.NewUUID(), []byte(`{"id":1,"total":1}`)))
	if err == nil || !strings.Contains(err.Error(), "subject_strategy record needs the record's name") {
		t.Fatalf("no model: err = %v", err)
	}

	topic2 := "sr.topicrecord." + watermill.NewShortUUID()
	b2 := newSchemaBus(t, hosts, url, map[string]any{"schemas": map[string]any{topic2: writeSchema(t, "o.avsc", orderV1)},
		"subject_strategy": "topic_record", "auto_register": true}, nil)
	msg, err = bus.NewModelMessage(order{ID: 1, Total: 1})
	if err == nil {
		err = b2.Publish(context.Background(), topic2, msg)
	}
	if err != nil {
		t.Fatal(err)
	}
	if id2 := register(t, url, topic2+"-shop.Order", orderV1); id2 != id {
		t.Fatalf("subject %s-shop.Order has id %d, want the same schema's id %d", topic2, id2, id)
	}
}
