package jsonfmt_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-eventbus/eventbus/internal/jsonfmt"
)

type inner struct {
	N int `json:"n"`
}

func (i inner) MarshalJSON() ([]byte, error) { return []byte(`"inner"`), nil }

type sample struct {
	Name    string            `json:"name"`
	Empty   string            `json:"empty"`
	At      time.Time         `json:"at"`
	Unset   time.Time         `json:"unset_at"`
	Took    time.Duration     `json:"took"`
	Count   int               `json:"count,omitempty"`
	OK      bool              `json:"ok,omitempty"`
	List    []string          `json:"list,omitempty"`
	Map     map[string]int    `json:"map"`
	Inner   []inner           `json:"inner"`
	Ptr     *inner            `json:"ptr"`
	Bytes   []byte            `json:"bytes"`
	Skipped string            `json:"-"`
	Meta    map[string]string `json:"meta"`
	private int
}

// Marshal applies the conventions whatever the tags say, in the fields' order.
func TestMarshal(t *testing.T) {
	at := time.Date(2026, 12, 1, 13, 4, 5, 123456789, time.FixedZone("CET", 3600))
	b, err := jsonfmt.Marshal(sample{Name: "x", At: at, Took: 1500 * time.Microsecond, Inner: []inner{{1}}, Skipped: "no", private: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"x","at":"2026-12-01T12:04:05.123456Z","took":1500000,"count":0,"ok":false,"list":[],"map":{},"inner":["inner"],"meta":{}}`
	if string(b) != want {
		t.Fatalf("Marshal =\n%s\nwant\n%s", b, want)
	}
	if problems, _ := jsonfmt.Check(b); len(problems) != 0 {
		t.Fatalf("Check of Marshal's output: %v", problems)
	}
	var back struct {
		At jsonfmt.Time `json:"at"`
	}
	if err := json.Unmarshal(b, &back); err != nil || !time.Time(back.At).Equal(at.Truncate(time.Microsecond)) {
		t.Fatalf("decode: %v %v", err, time.Time(back.At))
	}
	if _, err := jsonfmt.Marshal(struct{ inner }{}); err == nil {
		t.Fatal("an embedded struct was accepted")
	}
}

func TestMerge(t *testing.T) {
	b, err := jsonfmt.Merge(struct {
		A int `json:"a"`
	}{1}, struct{}{}, map[string]int{"b": 2})
	if err != nil || string(b) != `{"a":1,"b":2}` {
		t.Fatalf("Merge = %s, %v", b, err)
	}
	if _, err := jsonfmt.Merge([]int{1}); err == nil {
		t.Fatal("a list was merged")
	}
}

// Check finds each kind of break of the conventions, and accepts the user's data.
func TestCheck(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{`{"a":null}`, "a: null"},
		{`{"a":""}`, "a: empty string"},
		{`{"created_at":"0001-01-01T00:00:00Z"}`, "not RFC 3339 UTC with microseconds"},
		{`{"created_at":"2026-12-01T12:00:00.123Z"}`, "not RFC 3339 UTC with microseconds"},
		{`{"since":"2026-12-01T12:00:00.123456+01:00"}`, "not RFC 3339 UTC with microseconds"},
		{`{"note":"2026-12-01T12:00:00Z"}`, "time-like"},
		{`{"created_at":1700000000}`, "time written as a number"},
		{`{"history":[{"duration":1.5}]}`, "not an integer"},
		{`{"payload":{},"payload_base64":"AA=="}`, "both payload and payload_base64"},
		{`{"payload_base64":"e30="}`, "belong under payload"},
		{`{"payload_base64":"%%"}`, "not base64"},
		{`{"metadata":{"k":1}}`, "not a string"},
	} {
		problems, _ := jsonfmt.Check([]byte(c.doc))
		if !strings.Contains(strings.Join(problems, "\n"), c.want) {
			t.Errorf("Check(%s) = %q, want a problem %q", c.doc, problems, c.want)
		}
	}
	good := `{"events":[{"created_at":"2026-12-01T12:00:00.000000Z","payload":{"x":null,"y":""},"metadata":{"k":""},"history":[]}],"by_status":{}}`
	problems, keys := jsonfmt.Check([]byte(good))
	if len(problems) != 0 || !keys["events.payload"] || !keys["events.history"] || keys["events.payload.x"] {
		t.Fatalf("Check(good) = %q, keys %v", problems, keys)
	}
}

// BenchmarkMarshal encodes a struct of ten fields with Marshal and, for comparison,
// with encoding/json's default.
func BenchmarkMarshal(b *testing.B) {
	type row struct {
		ID        string            `json:"id"`
		Name      string            `json:"name"`
		Host      string            `json:"host"`
		PID       int               `json:"pid"`
		Version   string            `json:"version"`
		Started   time.Time         `json:"started_at"`
		LastSeen  time.Time         `json:"last_seen"`
		Interval  time.Duration     `json:"heartbeat_interval"`
		Gone      bool              `json:"gone"`
		Consumers map[string]string `json:"consumers"`
	}
	now := time.Now()
	v := row{ID: "vm-1-AB12", Name: "worker-1", Host: "vm", PID: 42, Version: "v1.2.3", Started: now, LastSeen: now, Interval: time.Second}
	b.Run("jsonfmt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jsonfmt.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("default", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
