package admin_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/go-eventbus/eventbus/admin"
	"github.com/go-eventbus/eventbus/control"
)

// A top error of the overview links to the events in control's error statuses, the
// ones its group was read from.
func TestTopErrorLinksErrorStatuses(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.publish(1) // shipping poisons it
	var names []string
	for _, s := range control.ErrorStatuses() {
		names = append(names, string(s))
	}
	want := url.Values{"status": {strings.Join(names, ",")}}.Encode()
	page := mustGet(t, e, "")
	if !strings.Contains(page, `data-fingerprint="carrier API timeout`) {
		t.Fatalf("the overview lists no top error:\n%s", page)
	}
	if !strings.Contains(page, want) {
		t.Fatalf("the top error does not link to %s:\n%s", want, page)
	}
}
