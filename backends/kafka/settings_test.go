package kafka_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/go-eventbus/eventbus/bus"
)

// closedPort returns host:port of a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func TestWrongSettings(t *testing.T) {
	closed := closedPort(t)
	cases := []struct {
		name     string
		settings map[string]any
		want     []string
	}{
		{"unknown key", map[string]any{"broker_hosts": []any{closed}, "brokers": "x"},
			[]string{"backend kafka", "backend_settings.brokers: unknown key", "broker_hosts"}},
		{"missing broker_hosts", map[string]any{},
			[]string{"backend kafka", "backend_settings.broker_hosts: must be a non-empty list of host:port"}},
		{"URL instead of host:port", map[string]any{"broker_hosts": []any{"kafka://127.0.0.1:9092"}},
			[]string{"backend_settings.broker_hosts[0]", "kafka://127.0.0.1:9092", "host:port"}},
		{"no port", map[string]any{"broker_hosts": "127.0.0.1"},
			[]string{"backend_settings.broker_hosts[0]", "host:port"}},
		{"schema registry without topics", map[string]any{"broker_hosts": []any{closed}, "schema_registry_url": "http://localhost:8081"},
			[]string{"backend_settings.schema_registry.topics: name the topics"}},
		{"schema registry not a URL", map[string]any{"broker_hosts": []any{closed}, "schema_registry_url": "localhost:8081", "schema_registry": map[string]any{"topics": "orders"}},
			[]string{"backend_settings.schema_registry_url", "not an http(s) URL"}},
		{"schema registry settings without URL", map[string]any{"broker_hosts": []any{closed}, "schema_registry": map[string]any{"topics": "orders"}},
			[]string{"backend_settings.schema_registry: set, but schema_registry_url is empty"}},
		{"schema registry json_schema", map[string]any{"broker_hosts": []any{closed}, "schema_registry_url": "http://localhost:8081", "schema_registry": map[string]any{"topics": "orders", "format": "json_schema"}},
			[]string{"backend_settings.schema_registry.format: json_schema is not supported yet"}},
		{"schema registry strategy", map[string]any{"broker_hosts": []any{closed}, "schema_registry_url": "http://localhost:8081", "schema_registry": map[string]any{"topics": "orders", "subject_strategy": "TopicNameStrategy"}},
			[]string{"backend_settings.schema_registry.subject_strategy", "topic, record, topic_record"}},
		{"schema registry missing file", map[string]any{"broker_hosts": []any{closed}, "schema_registry_url": "http://localhost:8081", "schema_registry": map[string]any{"schemas": map[string]any{"orders": "/nonexistent/order.avsc"}}},
			[]string{"backend_settings.schema_registry.schemas.orders", "/nonexistent/order.avsc"}},
		{"schema registry unknown key", map[string]any{"broker_hosts": []any{closed}, "schema_registry_url": "http://localhost:8081", "schema_registry": map[string]any{"topics": "orders", "autoregister": true}},
			[]string{"backend_settings.schema_registry.autoregister: unknown key", "auto_register"}},
		{"schema registry unreachable", map[string]any{"broker_hosts": []any{closed}, "connect_timeout": "2s", "schema_registry_url": "http://" + closed, "schema_registry": map[string]any{"topics": "orders"}},
			[]string{"backend kafka", "schema registry http://" + closed, "connection refused", "check backend_settings.schema_registry_url"}},
		{"initial offset", map[string]any{"broker_hosts": []any{closed}, "initial_offset": "latest"},
			[]string{"backend_settings.initial_offset", "oldest, newest"}},
		{"kafka version", map[string]any{"broker_hosts": []any{closed}, "kafka_version": "three"},
			[]string{"backend_settings.kafka_version"}},
		{"sasl mechanism", map[string]any{"broker_hosts": []any{closed}, "sasl": map[string]any{"mechanism": "GSSAPI", "username": "u", "password": "p"}},
			[]string{"backend_settings.sasl.mechanism", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"}},
		{"sasl password", map[string]any{"broker_hosts": []any{closed}, "sasl": map[string]any{"mechanism": "PLAIN", "username": "u"}},
			[]string{"backend_settings.sasl.password: required"}},
		{"tls key without cert", map[string]any{"broker_hosts": []any{closed}, "tls": map[string]any{"enabled": true, "key_file": "k.pem"}},
			[]string{"backend_settings.tls.cert_file"}},
		{"tls file without enabled", map[string]any{"broker_hosts": []any{closed}, "tls": map[string]any{"ca_file": "ca.pem"}},
			[]string{"backend_settings.tls.ca_file", "tls.enabled"}},
		{"tls missing CA file", map[string]any{"broker_hosts": []any{closed}, "tls": map[string]any{"enabled": true, "ca_file": "/nonexistent/ca.pem"}},
			[]string{"backend_settings.tls.ca_file", "/nonexistent/ca.pem"}},
		{"heartbeat above session", map[string]any{"broker_hosts": []any{closed}, "session_timeout": "1s", "heartbeat_interval": "2s"},
			[]string{"backend_settings.heartbeat_interval"}},
		{"unreachable broker", map[string]any{"broker_hosts": []any{closed}, "connect_timeout": "2s"},
			[]string{"backend kafka", "connect [" + closed + "]", "backend_settings.broker_hosts"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			b, err := bus.OpenBackend(context.Background(), "kafka", tc.settings, bus.BackendOptions{})
			if err == nil {
				_ = b.Close()
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v, want a bounded failure", d)
			}
		})
	}
}

// TestUnansweredBroker: a port that accepts connections but never answers fails within
// connect_timeout.
func TestUnansweredBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	_, err = bus.OpenBackend(context.Background(), "kafka",
		map[string]any{"broker_hosts": []any{ln.Addr().String()}, "connect_timeout": "1s"}, bus.BackendOptions{})
	if err == nil || !strings.Contains(err.Error(), "connect_timeout") {
		t.Fatalf("err = %v, want a connect_timeout error", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v for a 1s connect_timeout", d)
	}
}

func TestSASL(t *testing.T) {
	if realBrokers() != nil {
		t.Skip("needs kfake's SASL users")
	}
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			hosts := startKafka(t, kfake.EnableSASL(), kfake.Superuser(mech, "alice", "s3cret"))
			b, err := bus.OpenBackend(context.Background(), "kafka",
				settings(hosts, "sasl", map[string]any{"mechanism": mech, "username": "alice", "password": "s3cret"}), bus.BackendOptions{})
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, b, "sasl."+mech)
			_ = b.Close()

			_, err = bus.OpenBackend(context.Background(), "kafka",
				settings(hosts, "connect_timeout", "3s", "sasl", map[string]any{"mechanism": mech, "username": "alice", "password": "wrong"}), bus.BackendOptions{})
			if err == nil || !strings.Contains(err.Error(), "sasl") {
				t.Fatalf("wrong password: err = %v, want a connect error naming the sasl settings", err)
			}
		})
	}
}
