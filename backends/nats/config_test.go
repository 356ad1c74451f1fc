package nats

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/bus"
)

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"billing":          "billing",
		"shop.orders":      "shop_orders",
		"send-email_v2":    "send-email_v2",
		"a b*c>d/e\\f~g.h": "a_b_c_d_e_f_g_h",
		"émile":            "__mile",
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
	long := strings.Repeat("x", 300)
	if got := Name(long); len(got) != maxNameLen || got == Name(long+"y") || !strings.Contains(got, "~") {
		t.Errorf("Name(300 x) = %q (%d bytes); want %d bytes ending in ~hash, unique", got, len(got), maxNameLen)
	}
	c := Config{StreamPrefix: "s_", DurablePrefix: "d_", QueueGroupPrefix: "q_", SubjectPrefix: "app."}
	if c.StreamName("shop.orders") != "s_shop_orders" || c.DurableName("billing.eu") != "d_billing_eu" ||
		c.QueueGroup("billing.eu") != "q_billing_eu" || c.Subject("shop.orders") != "app.shop.orders" {
		t.Errorf("mapping: %s %s %s %s", c.StreamName("shop.orders"), c.DurableName("billing.eu"), c.QueueGroup("billing.eu"), c.Subject("shop.orders"))
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestWrongSettings(t *testing.T) {
	cases := []struct {
		name     string
		settings map[string]any
		want     []string
	}{
		{"unknown key", map[string]any{"urls": "nats://x:4222"}, []string{"backend nats", "backend_settings.urls: unknown key", "url"}},
		{"bad scheme", map[string]any{"url": "http://127.0.0.1:4222"}, []string{"backend_settings.url", `scheme "http"`, "nats, tls, ws, wss"}},
		{"bad port", map[string]any{"url": "nats://127.0.0.1:99999"}, []string{"backend_settings.url", "bad port"}},
		{"no host", map[string]any{"url": "nats://:4222"}, []string{"backend_settings.url", "no host"}},
		{"unreachable", map[string]any{"url": "nats://" + closedPort(t), "connect_timeout": "2s"}, []string{"backend_settings.url: cannot connect", "embedded: true"}},
		{"blackhole", map[string]any{"url": "nats://10.255.255.1:4222", "connect_timeout": "1s"}, []string{"backend_settings.url: cannot connect to nats://10.255.255.1:4222 within 1s"}},
		{"bad duration", map[string]any{"ack_wait": "soon"}, []string{"backend_settings.ack_wait", "not a duration"}},
		{"short ack wait", map[string]any{"ack_wait": "10ms"}, []string{"backend_settings.ack_wait", "at least 1s"}},
		{"subscribers", map[string]any{"subscribers_count": -2}, []string{"backend_settings.subscribers_count", "≥ 1"}},
		{"deliver policy", map[string]any{"deliver_policy": "last"}, []string{"backend_settings.deliver_policy", "all, new"}},
		{"storage", map[string]any{"storage": "disk"}, []string{"backend_settings.storage", "file, memory"}},
		{"prefix", map[string]any{"durable_prefix": "a.b"}, []string{"backend_settings.durable_prefix", "may not contain"}},
		{"two auths", map[string]any{"token": "t", "username": "u"}, []string{"only one of"}},
		{"missing creds", map[string]any{"credentials_file": "/nonexistent/x.creds"}, []string{"backend_settings.credentials_file", "no such file"}},
		{"half tls", map[string]any{"tls": map[string]any{"cert_file": "/etc/hostname"}}, []string{"backend_settings.tls", "cert_file and key_file"}},
		{"tls unknown", map[string]any{"tls": map[string]any{"ca": "x"}}, []string{"backend_settings.tls.ca: unknown key", "ca_file"}},
		{"embedded url", map[string]any{"embedded": true, "url": "nats://127.0.0.1:4222"}, []string{"backend_settings.url", "embedded: true"}},
		{"embedded tls", map[string]any{"embedded": true, "tls": map[string]any{"insecure_skip_verify": true}}, []string{"backend_settings.tls", "not yet supported"}},
		{"store_dir without embedded", map[string]any{"store_dir": "x"}, []string{"backend_settings.store_dir", "embedded: true"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			start := time.Now()
			b, err := bus.OpenBackend(ctx, "nats", c.settings, bus.BackendOptions{})
			if err == nil {
				b.Close()
				t.Fatal("no error")
			}
			t.Log(err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestNoJetStream(t *testing.T) {
	// An embedded server without JetStream is not possible through Config; a plain
	// NATS server would answer the JetStream check with "not enabled". The check's
	// wording is covered here through a stopped embedded backend instead: connecting
	// to a server that went away fails naming the url.
	b := openBackend(t, embeddedSettings(t))
	url := b.URL()
	b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, err := bus.OpenBackend(ctx, "nats", map[string]any{"url": url, "connect_timeout": "1s"}, bus.BackendOptions{})
	if err == nil || !strings.Contains(err.Error(), "backend_settings.url: cannot connect to "+url) {
		t.Fatalf("err = %v", err)
	}
}
