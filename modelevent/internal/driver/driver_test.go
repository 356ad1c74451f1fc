package driver

import (
	"database/sql"
	"errors"
	"strings"
	"testing"
)

type fake struct{ data error }

func (fake) Open(string) (*sql.DB, error) { return nil, errors.New("fake") }
func (f fake) IsDataError(err error) bool { return errors.Is(err, f.data) }

// TestRegister registers as database/sql does: a name once, never empty or nil; the
// registered dialects listed sorted; a data error recognised by the driver that knows it.
func TestRegister(t *testing.T) {
	mustPanic := func(name string, fn func(), want string) {
		t.Helper()
		defer func() {
			r := recover()
			if r == nil || !strings.Contains(r.(string), want) {
				t.Errorf("%s: panic %v, want one containing %q", name, r, want)
			}
		}()
		fn()
	}
	errB := errors.New("b refuses the row")
	Register("test-b", fake{data: errB})
	Register("test-a", fake{data: errors.New("a")})
	mustPanic("twice", func() { Register("test-a", fake{}) }, "twice")
	mustPanic("empty", func() { Register("", fake{}) }, "empty")
	mustPanic("nil", func() { Register("test-c", nil) }, "nil")

	if got := strings.Join(Dialects(), ","); got != "test-a,test-b" {
		t.Errorf("Dialects() = %s, want test-a,test-b", got)
	}
	if _, ok := Lookup("test-c"); ok {
		t.Error("Lookup(test-c) found a driver that failed to register")
	}
	if !IsDataError(errB) || IsDataError(errors.New("timeout")) {
		t.Error("IsDataError: want true for the error a driver knows, false for others")
	}
}
