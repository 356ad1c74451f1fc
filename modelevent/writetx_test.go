package modelevent

import (
	"context"
	"testing"
)

// TestWriteTx writes rows inside a caller's transaction, on a second *sql.DB of the same
// database: committed rows are stored with their attempts, rolled-back rows are not.
func TestWriteTx(t *testing.T) {
	for _, b := range testBackends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.setup(t)
			s := openStore(t, b.name, dsn, true)
			drv, err := lookupDriver(b.name)
			if err != nil {
				t.Fatal(err)
			}
			other, err := drv.Open(dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			mustWarm := orderChange("warm", "shop.Order", "0", Created)
			mustWrite(t, s, mustWarm) // fills the SQLite statement cache of s.db

			for _, commit := range []bool{true, false} {
				uuid := "tx-commit"
				if !commit {
					uuid = "tx-rollback"
				}
				tx, err := other.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				c := orderChange(uuid, "shop.Order", "42", Updated)
				c.Event.Status, c.Event.Attempts = StatusPending, 0
				c2 := c
				c2.Event.Attempts = 1
				c2.NewAttempts = []Attempt{{Error: "first try"}}
				if err := s.WriteTx(ctx, tx, []Change{c, c2}); err != nil {
					_ = tx.Rollback()
					t.Fatalf("WriteTx: %v", err)
				}
				if commit {
					err = tx.Commit()
				} else {
					err = tx.Rollback()
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			got := listAll(t, s, Filter{ObjectID: "42"})
			if len(got) != 1 || got[0].MessageUUID != "tx-commit" || got[0].Status != StatusPending || got[0].Attempts != 1 {
				t.Fatalf("after commit and rollback: %+v", got)
			}
			if e := mustGet(t, s, got[0].ID); len(e.History) != 1 || e.History[0].Error != "first try" {
				t.Fatalf("history = %+v", e.History)
			}
			if err := s.WriteTx(ctx, nil, []Change{mustWarm}); err == nil {
				t.Error("nil tx: no error")
			}
		})
	}
}
