package modelevent

import (
	"context"
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
			if n, err := s.PruneClaims(ctx, -time.Hour, 100); err != nil || n != 2 {
				t.Errorf("prune every claim (lapsing within the hour): %d, %v; want 2", n, err)
			}
		})
	}
}
