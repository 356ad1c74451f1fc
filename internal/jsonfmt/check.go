package jsonfmt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// TimeRE matches a time written by TimeLayout in UTC.
var TimeRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$`)

// looksLikeTime catches a time under any name and in any layout.
var looksLikeTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}`)

// timeKeys are the keys whose values are times, beside those ending in "_at".
var timeKeys = map[string]bool{"since": true, "until": true, "start": true, "last_seen": true, "last_run": true}

// durationKeys are the keys whose values are durations (integers of nanoseconds);
// "commands" is one inside a retention policy only.
var durationKeys = map[string]bool{"duration": true, "bucket": true, "avg": true, "max": true, "heartbeat_interval": true, "interval": true}

// Check walks a JSON document and reports where it breaks the conventions of the
// package doc: a null, an empty string, a time that is not TimeLayout in UTC (or is
// the zero time), a duration that is not an integer, a "payload" next to a
// "payload_base64", a "payload_base64" that is not base64 or whose bytes are JSON.
// The insides of "payload" (the user's JSON) and the values of "metadata" (the
// user's strings) are not checked. Keys lists every object key met, as path
// patterns without list indexes ("events.history.started_at"), so that a test can
// check which fields its documents covered.
func Check(doc []byte) (problems []string, keys map[string]bool) {
	keys = map[string]bool{}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []string{"not JSON: " + err.Error()}, keys
	}
	c := checker{keys: keys}
	c.walk("", "", v)
	sort.Strings(c.problems)
	return c.problems, keys
}

type checker struct {
	problems []string
	keys     map[string]bool
}

func (c *checker) errorf(path, format string, args ...any) {
	if path == "" {
		path = "(document)"
	}
	c.problems = append(c.problems, path+": "+fmt.Sprintf(format, args...))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (c *checker) walk(path, key string, v any) {
	switch x := v.(type) {
	case nil:
		c.errorf(path, "null")
	case map[string]any:
		if _, ok := x["payload"]; ok {
			if _, both := x["payload_base64"]; both {
				c.errorf(path, "both payload and payload_base64")
			}
		}
		for k, val := range x {
			p := join(path, k)
			c.keys[p] = true
			switch k {
			case "payload":
				if val == nil {
					c.errorf(p, "null")
				}
				continue
			case "payload_base64":
				s, _ := val.(string)
				b, err := base64.StdEncoding.DecodeString(s)
				switch {
				case err != nil || s == "":
					c.errorf(p, "not base64: %v", val)
				case json.Valid(b) && !bytes.Equal(bytes.TrimSpace(b), []byte("null")):
					c.errorf(p, "bytes that are JSON (%s) belong under payload", b)
				}
				continue
			case "metadata":
				m, ok := val.(map[string]any)
				if !ok {
					c.errorf(p, "not an object: %v", val)
					continue
				}
				for mk, mv := range m {
					if _, ok := mv.(string); !ok {
						c.errorf(join(p, mk), "metadata value is not a string: %v", mv)
					}
				}
				continue
			}
			c.walk(p, k, val)
		}
	case []any:
		for _, e := range x {
			c.walk(path, key, e)
		}
	case string:
		isTime := strings.HasSuffix(key, "_at") || timeKeys[key]
		switch {
		case x == "":
			c.errorf(path, "empty string (left out when there is no value)")
		case isTime && !TimeRE.MatchString(x):
			c.errorf(path, "time %q is not RFC 3339 UTC with microseconds", x)
		case looksLikeTime.MatchString(x) && !TimeRE.MatchString(x):
			c.errorf(path, "time-like %q is not RFC 3339 UTC with microseconds", x)
		case strings.HasPrefix(x, "0001-01-01"):
			c.errorf(path, "zero time %q (left out when unset)", x)
		}
	case json.Number:
		if durationKeys[key] || (key == "commands" && strings.Contains(path, "policy")) || strings.HasPrefix(path, "max_age.") || strings.Contains(path, ".max_age.") {
			if _, err := x.Int64(); err != nil {
				c.errorf(path, "duration %s is not an integer of nanoseconds", x)
			}
		}
		if strings.HasSuffix(key, "_at") || timeKeys[key] {
			c.errorf(path, "time written as a number: %s", x)
		}
	case bool:
	}
}
