package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// parseQuery parses a query string or a form body strictly. url.ParseQuery keeps
// going past a malformed pair and drops it, so a filter with a bad escape would
// silently widen; parseQuery refuses the request instead, naming the parameter.
func parseQuery(raw string) (url.Values, error) {
	v := url.Values{}
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		rawKey, rawVal, _ := strings.Cut(pair, "=")
		key, kerr := url.QueryUnescape(rawKey)
		if kerr != nil {
			key = rawKey
		}
		if strings.Contains(pair, ";") {
			k, _, _ := strings.Cut(key, ";")
			return nil, badParam(clip(k), "contains a semicolon: separate parameters with & (a literal ; is written %3B)")
		}
		if kerr != nil {
			return nil, badParam(clip(rawKey), "malformed percent-encoding in the parameter name")
		}
		val, err := url.QueryUnescape(rawVal)
		if err != nil {
			return nil, badParam(clip(key), "malformed percent-encoding in the value (a literal % is written %25)")
		}
		v[key] = append(v[key], val)
	}
	return v, nil
}

// query is the request's query, parsed strictly (see parseQuery).
func query(r *http.Request) (url.Values, error) {
	return parseQuery(r.URL.RawQuery)
}

// formValues returns the parameters of a POST: those of its body, then those of its
// query. The body may be a form (application/x-www-form-urlencoded, what the pages
// send) or a JSON object whose values are strings, numbers, booleans or arrays of
// strings (what scripts send). Any other non-empty body is refused with 415: a body
// that is not read must never leave an action with an empty filter.
func formValues(r *http.Request) (url.Values, error) {
	q, err := query(r)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, badParam("body", fmt.Sprintf("request body over %d bytes", tooBig.Limit))
		}
		return nil, badParam("body", "reading the request body: "+err.Error())
	}
	v := url.Values{}
	ct := r.Header.Get("Content-Type")
	mt := ""
	if ct != "" {
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			return nil, &mediaError{"malformed Content-Type " + strconv.Quote(clip(ct))}
		}
	}
	switch {
	case mt == "application/x-www-form-urlencoded":
		if v, err = parseQuery(string(body)); err != nil {
			return nil, err
		}
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		if v, err = jsonValues(body); err != nil {
			return nil, err
		}
	case len(strings.TrimSpace(string(body))) == 0:
		// No body: the parameters are in the query.
	default:
		if mt == "" {
			mt = "no Content-Type"
		}
		return nil, &mediaError{"unsupported request body (" + mt + "): send application/x-www-form-urlencoded or application/json, or the parameters in the query"}
	}
	for k, vals := range q {
		v[k] = append(v[k], vals...)
	}
	return v, nil
}

// jsonValues turns a JSON object body into parameters.
func jsonValues(body []byte) (url.Values, error) {
	v := url.Values{}
	if len(strings.TrimSpace(string(body))) == 0 {
		return v, nil
	}
	var obj map[string]any
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, badParam("body", "malformed JSON body (want an object of parameters, e.g. {\"status\": \"poisoned\"}): "+err.Error())
	}
	if dec.More() {
		return nil, badParam("body", "malformed JSON body: more than one value")
	}
	for k, raw := range obj {
		switch x := raw.(type) {
		case nil:
		case string:
			v.Add(k, x)
		case json.Number:
			v.Add(k, x.String())
		case bool:
			v.Add(k, strconv.FormatBool(x))
		case []any:
			for _, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, badParam(clip(k), "a JSON array parameter must hold strings")
				}
				v.Add(k, s)
			}
		default:
			return nil, badParam(clip(k), "a JSON parameter is a string, number, boolean or array of strings")
		}
	}
	return v, nil
}

// mediaError is a request body of a type the console does not read (415).
type mediaError struct{ msg string }

func (e *mediaError) Error() string { return e.msg }

// params is the request's query, parsed strictly and checked against the allowed
// parameter names (see checkParams).
func params(r *http.Request, allowed ...[]string) (url.Values, error) {
	q, err := query(r)
	if err != nil {
		return nil, err
	}
	if err := checkParams(q, allowed...); err != nil {
		return nil, err
	}
	return q, nil
}
