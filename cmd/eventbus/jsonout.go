package main

import (
	"encoding/json"
	"io"

	"github.com/go-eventbus/eventbus/internal/jsonfmt"
)

// printJSON writes v as indented JSON. What --json prints is the types' own JSON
// encoding (the MarshalJSON methods of modelevent and control), the same the console's
// API answers, by the conventions of docs/api.md#json-conventions: a JSON payload is
// JSON under "payload" and other bytes base64 under "payload_base64"; times are RFC
// 3339 UTC with microseconds and left out when unset; lists are [] when empty.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// MarshalJSON writes the members of the BulkResult and the outcome of its commands
// (the BulkResult's own MarshalJSON would otherwise be the whole encoding).
func (wr bulkWaitResult) MarshalJSON() ([]byte, error) {
	return jsonfmt.Merge(wr.BulkResult, struct {
		Succeeded      int      `json:"succeeded"`
		FailedCommands int      `json:"failed_commands"`
		Pending        int      `json:"pending"`
		CommandErrors  []string `json:"command_errors"`
	}{wr.Succeeded, wr.FailedCommands, wr.Pending, jsonfmt.List(wr.CommandErrors)})
}

// MarshalJSON writes a bench result by the same conventions: every number present
// (rows_per_sec is 0 for a run that stores no rows, peak_rss_bytes 0 where the system
// does not tell).
func (l benchJSONLine) MarshalJSON() ([]byte, error) { return jsonfmt.Marshal(l) }
