package kafka_test

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/go-eventbus/eventbus/internal/testenv"
)

// BrokersEnv names real brokers (comma-separated host:port) to test against instead of
// an in-process kfake cluster.
const BrokersEnv = "EVENTBUS_TEST_KAFKA_BROKERS"

// realBrokers returns the brokers of BrokersEnv, or nil.
func realBrokers() []string {
	v := strings.TrimSpace(os.Getenv(BrokersEnv))
	if v == "" {
		return nil
	}
	var out []string
	for _, h := range strings.Split(v, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// startKafka returns the brokers to test against: BrokersEnv's, or those of a new
// one-broker kfake cluster closed at cleanup.
func startKafka(t testing.TB, opts ...kfake.Opt) []string {
	t.Helper()
	if hosts := realBrokers(); hosts != nil {
		var err error
		for _, h := range hosts {
			var c net.Conn
			if c, err = net.DialTimeout("tcp", h, 3*time.Second); err == nil {
				_ = c.Close()
				break
			}
		}
		if err != nil {
			err = fmt.Errorf("%s=%s: %w", BrokersEnv, os.Getenv(BrokersEnv), err)
		}
		testenv.RequireService(t, "kafka", err)
		return hosts
	}
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// settings returns backend_settings for hosts, with consumer-group timings short
// enough for tests (and accepted by a real broker's defaults).
func settings(hosts []string, extra ...any) map[string]any {
	list := make([]any, len(hosts))
	for i, h := range hosts {
		list[i] = h
	}
	s := map[string]any{
		"broker_hosts":          list,
		"connect_timeout":       "5s",
		"session_timeout":       "6s",
		"heartbeat_interval":    "200ms",
		"rebalance_timeout":     "5s",
		"reconnect_retry_sleep": "200ms",
		"nack_resend_sleep":     "10ms",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		s[extra[i].(string)] = extra[i+1]
	}
	return s
}
