package control_test

import (
	"fmt"
	"testing"

	"github.com/go-eventbus/eventbus/control"
)

func TestFingerprint(t *testing.T) {
	for _, c := range [][2]string{
		{"fraud service rejected order 42: risk model unavailable", "fraud service rejected order <n>: risk model unavailable"},
		{"fraud service rejected order 7: risk model unavailable", "fraud service rejected order <n>: risk model unavailable"},
		{`user "alice" not found`, "user <q> not found"},
		{"user 'bob' not found", "user <q> not found"},
		{"message 3f2b8c1e-9d4a-4b7e-8f00-1a2b3c4d5e6f timed out after 1.5s", "message <uuid> timed out after <n>s"},
		{"event 01ARZ3NDEKTSV4RRFFQ69G5FAV: conflict", "event <id>: conflict"},
		{"commit deadbeefcafe0042 rejected", "commit <hex> rejected"},
		{"dial tcp 10.0.0.12:5432: connection refused", "dial tcp <n>: connection refused"},
		{"first line 12\nstack trace 99", "first line <n>"},
		{"  many   spaces\t here ", "many spaces here"},
	} {
		if got := control.Fingerprint(c[0]); got != c[1] {
			t.Errorf("Fingerprint(%q) = %q, want %q", c[0], got, c[1])
		}
	}
}

// ExampleFingerprint shows two errors of one shape.
func ExampleFingerprint() {
	fmt.Println(control.Fingerprint(`order 42 for "alice" rejected`))
	fmt.Println(control.Fingerprint(`order 7 for "bob" rejected`))
	// Output:
	// order <n> for <q> rejected
	// order <n> for <q> rejected
}
