package modelevent

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestRunClaims: a claim is won by one holder at a time, taken over once it lapses,
// released by its holder, checked in batches beside the rows' status, and pruned.
func TestRunClaims(t *testing.T) {
	for _, be := range testBackends {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, be.name, be.setup(t), true)
			won, taken, err := s.ClaimRun(ctx, "m1", "billing", "a", time.Minute)
			if err != nil || !won || taken {
				t.Fatalf("first claim: %v %v %v", won, taken, err)
			}
			if won, _, err = s.ClaimRun(ctx, "m1", "billing", "b", time.Minute); err != nil || won {
				t.Fatalf("claim held by another: won %v, %v", won, err)
			}
			if err := s.ReleaseRun(ctx, "m1", "billing", "a"); err != nil {
				t.Fatal(err)
			}
			if won, _, err = s.ClaimRun(ctx, "m1", "billing", "b", -time.Second); err != nil || !won {
				t.Fatalf("claim after release: won %v, %v", won, err)
			}
			if won, taken, err = s.ClaimRun(ctx, "m1", "billing", "c", time.Minute); err != nil || !won || !taken {
				t.Fatalf("claim over a lapsed one: %v %v %v", won, taken, err)
			}
			mustWrite(t, s, consumed("m2", "billing", StatusSucceeded, 1, ""))
			res, err := s.CheckAndClaimMany(ctx, []RunKey{{"m2", "billing", "d"}, {"m3", "billing", "d"}, {"m1", "billing", "d"}, {"m3", "billing", "e"}}, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			want := []RunClaim{{Status: StatusSucceeded}, {Won: true}, {}, {}}
			for i := range want {
				if res[i] != want[i] {
					t.Errorf("check %d: %+v, want %+v", i, res[i], want[i])
				}
			}
			want2 := int64(2)
			if be.name == DialectPostgres {
				want2 = 3 // its one-statement check also claimed m2, whose row succeeded
			}
			if n, err := s.PruneClaims(ctx, -time.Hour, 100); err != nil || n != want2 {
				t.Errorf("prune every claim (lapsing within the hour): %d, %v; want %d", n, err, want2)
			}
		})
	}
}

// TestCheckManySizes: a batch check reads every size right, the look-up padded to a
// power of two (a prepared statement each on SQLite) and split past 256 runs.
func TestCheckManySizes(t *testing.T) {
	for _, be := range testBackends {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, be.name, be.setup(t), true)
			for i := 0; i < 600; i += 2 {
				mustWrite(t, s, consumed(fmt.Sprint("ok", i), "billing", StatusSucceeded, 1, ""))
			}
			for _, n := range []int{1, 2, 3, 5, 129, 256, 257, 600} {
				keys := make([]RunKey, n)
				for i := range keys {
					keys[i] = RunKey{fmt.Sprint("ok", i), "billing", fmt.Sprint("h", n)}
				}
				res, err := s.CheckAndClaimMany(ctx, keys, time.Minute)
				if err != nil {
					t.Fatalf("%d runs: %v", n, err)
				}
				for i, r := range res {
					want := RunClaim{Status: StatusSucceeded}
					if i%2 == 1 {
						want = RunClaim{Won: true}
					}
					if r != want {
						t.Fatalf("%d runs: run %d: %+v, want %+v", n, i, r, want)
					}
				}
				for i := 1; i < n; i += 2 {
					_ = s.ReleaseRun(ctx, keys[i].MessageUUID, "billing", keys[i].Holder)
				}
			}
		})
	}
}
