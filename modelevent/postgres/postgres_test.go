package postgres_test

import (
	"context"
	"testing"

	"github.com/go-eventbus/eventbus/internal/testenv"
	"github.com/go-eventbus/eventbus/modelevent"
	"github.com/go-eventbus/eventbus/modelevent/postgres"
)

// TestIdleInTransactionTimeout: the store's sessions end a transaction whose client went
// quiet (a partitioned process), so its row locks do not hold up the other processes;
// a DSN that sets the parameter keeps its own value.
func TestIdleInTransactionTimeout(t *testing.T) {
	dsn := testenv.FreshPostgres(t)
	for _, c := range []struct{ dsn, want string }{
		{dsn, postgres.IdleInTransactionTimeout},
		{dsn + "&idle_in_transaction_session_timeout=1min", "1min"},
	} {
		s, err := modelevent.Open(context.Background(), "postgres", c.dsn)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := s.DB().QueryRowContext(context.Background(), "SHOW idle_in_transaction_session_timeout").Scan(&got); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if got != c.want {
			t.Errorf("DSN %s: idle_in_transaction_session_timeout %q, want %q", c.dsn, got, c.want)
		}
	}
}
