package admin_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/go-eventbus/eventbus/admin"
	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

// Example mounts the console under /events/ over a store, with basic auth, and reads
// the event counts through its JSON API.
func Example() {
	dir, _ := os.MkdirTemp("", "eventbus-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	store, err := modelevent.Open(ctx, "sqlite", "file:"+filepath.Join(dir, "events.db"))
	if err != nil {
		panic(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		panic(err)
	}
	insp := control.NewInspector(store, control.NewStore(store), control.InspectorOptions{})

	mux := http.NewServeMux()
	mux.Handle("/events/", http.StripPrefix("/events", admin.New(insp, admin.Options{
		Authorize: admin.BasicAuth("ops", "s3cret"),
	})))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/events/api/stats", nil)
	req.SetBasicAuth("ops", "s3cret")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(res.Status)
	fmt.Print(string(body))
	// Output:
	// 200 OK
	// {
	//   "total": 0,
	//   "by_status": {},
	//   "by_topic": []
	// }
}
