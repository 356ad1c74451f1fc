package amqp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/bus"
)

// closedPortURL returns an amqp:// URL whose port nothing listens on.
func closedPortURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "amqp://guest:secret@" + addr + "/"
}

func TestWrongSettings(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		settings map[string]any
		want     []string
	}{
		{"unknown key", map[string]any{"urls": "amqp://x"}, []string{"backend amqp", "backend_settings.urls: unknown key", "accepted:", "url"}},
		{"nested unknown key", map[string]any{"reconnect": map[string]any{"max": "1s"}}, []string{"backend_settings.reconnect.max: unknown key", "max_interval"}},
		{"bad scheme", map[string]any{"url": "http://guest:secret@127.0.0.1:5672/"}, []string{"backend_settings.url", `scheme "http"`, "amqp://", "xxxxx"}},
		{"unparsable url", map[string]any{"url": "amqp://guest:secret@127.0.0.1:port/"}, []string{"backend_settings.url", "amqp://user:password@host:5672/vhost"}},
		{"bad duration", map[string]any{"connect_timeout": "soon"}, []string{"backend_settings.connect_timeout", "not a duration"}},
		{"topology", map[string]any{"topology": "stream"}, []string{"backend_settings.topology", "durable_pubsub, durable_queue"}},
		{"exchange type", map[string]any{"exchange_type": "x-delayed"}, []string{"backend_settings.exchange_type", "fanout, topic, direct"}},
		{"headers exchange", map[string]any{"exchange_type": "headers"}, []string{"backend_settings.exchange_type", "not yet supported"}},
		{"shared fanout", map[string]any{"exchange_name_template": "events"}, []string{"backend_settings.exchange_name_template", "{topic}"}},
		{"pubsub queue without consumer", map[string]any{"queue_name_template": "{topic}"}, []string{"backend_settings.queue_name_template", "{consumer}"}},
		{"queue with consumer", map[string]any{"topology": "durable_queue", "queue_name_template": "{topic}.{consumer}"}, []string{"backend_settings.queue_name_template", "durable_pubsub"}},
		{"queue with exchange type", map[string]any{"topology": "durable_queue", "exchange_type": "topic"}, []string{"backend_settings.exchange_type", "not used by topology durable_queue"}},
		{"prefetch", map[string]any{"prefetch_count": 70000}, []string{"backend_settings.prefetch_count"}},
		{"multiplier", map[string]any{"reconnect": map[string]any{"multiplier": 0.5}}, []string{"backend_settings.reconnect.multiplier"}},
		{"tls on amqp", map[string]any{"tls": map[string]any{"insecure_skip_verify": true}}, []string{"backend_settings.tls", "amqps://"}},
		{"tls cert without key", map[string]any{"url": "amqps://127.0.0.1:5671/", "tls": map[string]any{"cert_file": "c.pem"}}, []string{"backend_settings.tls", "key_file"}},
		{"tls bad ca", map[string]any{"url": "amqps://127.0.0.1:5671/", "tls": map[string]any{"ca_file": notPEM}}, []string{"backend_settings.tls.ca_file", "no PEM"}},
		{"tls missing ca", map[string]any{"url": "amqps://127.0.0.1:5671/", "tls": map[string]any{"ca_file": filepath.Join(dir, "none.pem")}}, []string{"backend_settings.tls.ca_file", "no such file"}},
		{"closed port", map[string]any{"url": closedPortURL(t), "connect_timeout": "2s"}, []string{"backend amqp", "backend_settings.url: cannot connect", "check that RabbitMQ runs there", "xxxxx"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			b, err := bus.OpenBackend(context.Background(), Name, c.settings, bus.BackendOptions{})
			if err == nil {
				_ = b.Close()
				t.Fatal("no error")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v, want a bounded failure", d)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// TestConnectTimeout: a listener that accepts but never speaks AMQP must not hang New.
func TestConnectTimeout(t *testing.T) {
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
	_, err = New(context.Background(), Config{URL: "amqp://" + ln.Addr().String() + "/", ConnectTimeout: 500 * time.Millisecond}, nil)
	if err == nil || !strings.Contains(err.Error(), "backend_settings.url") {
		t.Fatalf("err = %v, want a connect error naming the url", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("New took %v with connect_timeout 500ms", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := New(ctx, Config{URL: "amqp://" + ln.Addr().String() + "/", ConnectTimeout: 5 * time.Second}, nil); err == nil {
		t.Fatal("no error")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("New ignored its context: took %v", d)
	}
}

func TestDefaults(t *testing.T) {
	var c Config
	c.setDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.URL != DefaultURL || c.Topology != TopologyDurablePubSub || c.ExchangeType != "fanout" || c.PrefetchCount != 16 || c.Concurrency != 16 || !*c.PublisherConfirms || c.ConnectTimeout != 10*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	if got := c.queueName("orders", "billing"); got != "orders_billing" {
		t.Fatalf("queue name = %q", got)
	}
	if got := c.exchangeName("orders"); got != "orders" {
		t.Fatalf("exchange name = %q", got)
	}
	q := Config{Topology: TopologyDurableQueue}
	q.setDefaults()
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	if q.queueName("orders", "billing") != "orders" || q.exchangeName("orders") != "" || q.routingKey("orders") != "orders" {
		t.Fatalf("durable_queue names: %q %q %q", q.queueName("orders", "billing"), q.exchangeName("orders"), q.routingKey("orders"))
	}
	topic := Config{ExchangeType: "topic", ExchangeNameTemplate: "events", QueueNameTemplate: "svc.{consumer}.{topic}"}
	topic.setDefaults()
	if err := topic.Validate(); err != nil {
		t.Fatal(err)
	}
	if topic.exchangeName("orders") != "events" || topic.routingKey("orders") != "orders" || topic.queueName("orders", "billing") != "svc.billing.orders" {
		t.Fatal("topic exchange names")
	}
}

// TestTLSFiles builds a TLS config from a CA and a client key pair on disk.
func TestTLSFiles(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "eventbus test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	must(os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	tc := &TLSConfig{CAFile: certFile, CertFile: certFile, KeyFile: keyFile}
	cfg, err := tc.build()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.InsecureSkipVerify {
		t.Fatalf("tls config: %+v", cfg)
	}
	c := Config{URL: "amqps://guest:guest@127.0.0.1:5671/", TLS: tc}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestTLSAgainstPlainPort: amqps:// to a plain AMQP listener fails within the timeout.
func TestTLSAgainstPlainPort(t *testing.T) {
	url := brokerURL(t)
	u := strings.Replace(url, "amqp://", "amqps://", 1)
	start := time.Now()
	_, err := New(context.Background(), Config{URL: u, ConnectTimeout: 2 * time.Second, TLS: &TLSConfig{InsecureSkipVerify: true}}, nil)
	if err == nil {
		t.Fatal("TLS handshake with a plain AMQP port succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}
