package outbox

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	_ "modernc.org/sqlite"

	"github.com/go-eventbus/eventbus/modelevent"
)

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "outbox.dialect: must be set"},
		{Config{Dialect: "oracle"}, `outbox.dialect: unknown dialect "oracle"`},
		{Config{Dialect: "sqlite", Table: "out box"}, "outbox.table"},
		{Config{Dialect: "sqlite", Table: "1abc"}, "outbox.table"},
		{Config{Dialect: "sqlite", Table: strings.Repeat("a", 64)}, "outbox.table"},
		{Config{Dialect: "mysql", BatchSize: -1}, "outbox.batch_size"},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want %q", c.cfg, err, c.want)
		}
	}
	cfg, err := Config{Dialect: "postgres"}.withDefaults()
	if err != nil || cfg.Table != DefaultTable || cfg.BatchSize != DefaultBatchSize || cfg.MaxRetryInterval != DefaultMaxRetryInterval {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
}

// TestSQLiteQueue runs the SQLite adapters through their queries: insert in order,
// select a batch, ack only the forwarded part of it.
func TestSQLiteQueue(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := Config{Dialect: modelevent.DialectSQLite, BatchSize: 3}
	for range 2 { // idempotent
		if err := InitializeSchema(ctx, db, cfg); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _ = cfg.withDefaults()
	schema, offsets := newAdapters(cfg)
	var msgs message.Messages
	for _, id := range []string{"a", "b", "c", "d"} {
		m := message.NewMessage(id, []byte("payload-"+id))
		m.Metadata.Set("k", id)
		msgs = append(msgs, m)
	}
	ins, err := schema.InsertQuery(wsql.InsertQueryParams{Topic: cfg.Table, Msgs: msgs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, ins.Query, ins.Args...); err != nil {
		t.Fatal(err)
	}
	sel, _ := schema.SelectQuery(wsql.SelectQueryParams{Topic: cfg.Table, OffsetsAdapter: offsets})
	read := func() []wsql.Row {
		rows, err := db.QueryContext(ctx, sel.Query, sel.Args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []wsql.Row
		for rows.Next() {
			r, err := schema.UnmarshalMessage(wsql.UnmarshalMessageParams{Row: rows})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		return out
	}
	batch := read()
	if len(batch) != 3 || batch[0].Msg.UUID != "a" || string(batch[1].Msg.Payload) != "payload-b" || batch[2].Msg.Metadata.Get("k") != "c" {
		t.Fatalf("first batch = %+v", batch)
	}
	// The relay stopped after forwarding a and b: c stays.
	ack, err := offsets.AckMessageQuery(wsql.AckMessageQueryParams{Topic: cfg.Table, LastRow: batch[1], Rows: batch})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, ack.Query, ack.Args...); err != nil {
		t.Fatal(err)
	}
	if batch = read(); len(batch) != 2 || batch[0].Msg.UUID != "c" || batch[1].Msg.UUID != "d" {
		t.Fatalf("after a partial ack: %+v, want c, d", batch)
	}
	if _, err := schema.SelectQuery(wsql.SelectQueryParams{Topic: cfg.Table, ConsumerGroup: "g"}); err == nil {
		t.Error("consumer group: no error")
	}
}
