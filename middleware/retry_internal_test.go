package middleware

import (
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// TestRetryAfterFailure: running the first attempt before Retry changes nothing that
// Retry decides: the number of attempts, the waits between them, permanent errors.
func TestRetryAfterFailure(t *testing.T) {
	cfg := RetryConfig{MaxRetries: 3, InitialInterval: 20 * time.Millisecond, MaxInterval: time.Second, Multiplier: 2}
	for _, tc := range []struct {
		name      string
		failures  int
		permanent bool
		wantCalls int
		wantErr   bool
	}{
		{"succeeds at once", 0, false, 1, false},
		{"succeeds on the second attempt", 1, false, 2, false},
		{"always fails", 100, false, 4, true},
		{"permanent", 100, true, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var starts []time.Time
			h := retryAfterFailure(Retry(cfg), func(msg *message.Message) ([]*message.Message, error) {
				starts = append(starts, time.Now())
				if len(starts) <= tc.failures {
					if tc.permanent {
						return nil, Permanent(errors.New("malformed"))
					}
					return nil, errors.New("fail")
				}
				return nil, nil
			})
			_, err := h(message.NewMessage("1", nil))
			if (err != nil) != tc.wantErr || len(starts) != tc.wantCalls {
				t.Fatalf("err = %v after %d calls, want error %v after %d", err, len(starts), tc.wantErr, tc.wantCalls)
			}
			for i := 1; i < len(starts); i++ {
				w := cfg.InitialInterval << (i - 1)
				if got := starts[i].Sub(starts[i-1]); got < w*9/10 || got > 3*w+50*time.Millisecond {
					t.Errorf("wait before retry %d = %v, want about %v", i, got, w)
				}
			}
		})
	}
}
