package postgres_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/modelevent"
	"github.com/go-eventbus/eventbus/modelevent/postgres"
)

// TestSessionDefaults: the store's sessions end a transaction whose client went quiet
// (a partitioned process) and probe silent clients, so their row locks do not hold up
// the other processes; a DSN that sets a parameter, itself or in options, keeps its
// own value.
func TestSessionDefaults(t *testing.T) {
	dsn := testenv.FreshPostgres(t)
	show := func(t *testing.T, dsn, param string) string {
		t.Helper()
		s, err := modelevent.Open(context.Background(), "postgres", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var got string
		if err := s.DB().QueryRowContext(context.Background(), "SHOW "+param).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := map[string]string{
		"idle_in_transaction_session_timeout": "5s",
		"tcp_keepalives_idle":                 "5",
		"tcp_keepalives_interval":             "1",
		"tcp_keepalives_count":                "3",
		"tcp_user_timeout":                    "10000",
	}
	if len(want) != len(postgres.SessionDefaults) {
		t.Fatalf("SessionDefaults has %d settings, the test checks %d", len(postgres.SessionDefaults), len(want))
	}
	for param, v := range want {
		if got := show(t, dsn, param); got != v {
			t.Errorf("%s = %q, want %q", param, got, v)
		}
	}
	for _, c := range []struct{ dsn, param, want string }{
		{dsn + "&idle_in_transaction_session_timeout=1min", "idle_in_transaction_session_timeout", "1min"},
		{dsn + "&options=" + strings.ReplaceAll(url.QueryEscape("-c tcp_keepalives_idle=30"), "+", "%20"), "tcp_keepalives_idle", "30"},
	} {
		if got := show(t, c.dsn, c.param); got != c.want {
			t.Errorf("DSN %s: %s = %q, want %q", c.dsn, c.param, got, c.want)
		}
	}
}
