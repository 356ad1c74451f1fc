package main

import (
	"strings"
	"testing"
)

func TestCheckTraceURL(t *testing.T) {
	for _, ok := range []string{"", "http://127.0.0.1:16686/trace/{trace_id}", "https://tempo.example/explore?trace={trace_id}"} {
		if err := checkTraceURL(ok); err != nil {
			t.Errorf("checkTraceURL(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"http://127.0.0.1:16686/trace/", "javascript:alert({trace_id})", "/trace/{trace_id}", "jaeger:16686/{trace_id}"} {
		err := checkTraceURL(bad)
		if err == nil || !strings.Contains(err.Error(), "--trace-url") {
			t.Errorf("checkTraceURL(%q) = %v, want an error naming --trace-url", bad, err)
		}
	}
}
