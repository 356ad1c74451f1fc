// Package schemaregistrytest runs an in-process Confluent schema registry for tests, as
// kfake runs an in-process Kafka: an httptest.Server on a loopback port that speaks the
// registry's REST API (register, look up, fetch by id, latest version, compatibility).
//
// The storage and the REST API are franz-go's srfake; this package adds what tests of
// an application need on top: HTTP basic auth, real Avro compatibility checks when a
// schema is registered (srfake accepts everything), a switch that makes the registry
// answer 503 as if it were down, and a request counter to prove caching.
//
//	reg := schemaregistrytest.New()
//	defer reg.Close()
//	// backend_settings: {schema_registry_url: reg.URL(), ...}
//
// Use it for tests only: it keeps everything in memory and forgets it on Close.
package schemaregistrytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// Registry is an in-process schema registry served on a loopback httptest.Server.
// Its methods are safe for concurrent use, also while requests are served.
type Registry struct {
	reg  *srfake.Registry
	srv  *httptest.Server
	user string
	pass string

	down     atomic.Bool
	requests atomic.Int64

	compatMu sync.Mutex
	compat   sr.CompatibilityLevel
}

// Option configures a Registry.
type Option func(*Registry)

// WithBasicAuth makes every request need HTTP basic auth with user and pass; a request
// without it gets 401, one with other credentials 401 too.
func WithBasicAuth(user, pass string) Option {
	return func(r *Registry) { r.user, r.pass = user, pass }
}

// WithCompatibility sets the compatibility level checked when an Avro schema is
// registered under a subject that has versions: sr.CompatBackward (the default, as in
// Confluent's registry), sr.CompatBackwardTransitive, sr.CompatForward,
// sr.CompatFull or sr.CompatNone. An incompatible schema is refused with 409 and error
// code 409, as the real registry does.
func WithCompatibility(level sr.CompatibilityLevel) Option {
	return func(r *Registry) { r.compat = level }
}

// New starts a registry on a loopback port. Close it when done.
func New(opts ...Option) *Registry {
	r := &Registry{reg: srfake.NewRegistry(), compat: sr.CompatBackward}
	for _, o := range opts {
		o(r)
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

// URL is the registry's base URL, e.g. http://127.0.0.1:41234, for
// backend_settings.schema_registry_url.
func (r *Registry) URL() string { return r.srv.URL }

// Close stops the server. It is idempotent.
func (r *Registry) Close() { r.srv.Close() }

// SetDown makes the registry answer every request with 503 (true) or serve again
// (false), keeping its schemas: a registry that is down or restarting.
func (r *Registry) SetDown(down bool) { r.down.Store(down) }

// Requests counts the HTTP requests served so far (including refused ones).
func (r *Registry) Requests() int64 { return r.requests.Load() }

// Register registers an Avro schema under subject, as POST /subjects/{subject}/versions
// does (same compatibility check), and returns its id and version. Registering a
// schema the subject already has returns the existing id and version.
func (r *Registry) Register(subject, avroSchema string) (id, version int, err error) {
	s := sr.Schema{Schema: avroSchema, Type: sr.TypeAvro}
	if err := r.checkCompatible(subject, s); err != nil {
		return 0, 0, err
	}
	return r.reg.RegisterSchema(subject, s)
}

// Subjects reports whether subject has at least one version.
func (r *Registry) Subjects(subject string) bool { return r.reg.SubjectExists(subject) }

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	if r.down.Load() {
		writeError(w, http.StatusServiceUnavailable, 50003, "schema registry is down (schemaregistrytest.SetDown)")
		return
	}
	if r.user != "" {
		u, p, ok := req.BasicAuth()
		if !ok || u != r.user || p != r.pass {
			writeError(w, http.StatusUnauthorized, 40101, "Unauthorized")
			return
		}
	}
	if req.Method == http.MethodPost && isRegister(req.URL.Path) {
		body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		if err != nil {
			writeError(w, http.StatusBadRequest, 400, err.Error())
			return
		}
		var s sr.Schema
		if err := json.Unmarshal(body, &s); err == nil {
			subject := strings.TrimSuffix(strings.TrimPrefix(req.URL.Path, "/subjects/"), "/versions")
			if err := r.checkCompatible(subject, s); err != nil {
				writeError(w, http.StatusConflict, 409, err.Error())
				return
			}
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.reg.Handler().ServeHTTP(w, req)
}

// isRegister reports whether path is /subjects/{subject}/versions.
func isRegister(path string) bool {
	rest, ok := strings.CutPrefix(path, "/subjects/")
	return ok && strings.HasSuffix(rest, "/versions") && !strings.Contains(strings.TrimSuffix(rest, "/versions"), "/")
}

// checkCompatible applies the compatibility level to an Avro schema registered under
// subject against the subject's latest version (all versions when transitive).
func (r *Registry) checkCompatible(subject string, s sr.Schema) error {
	r.compatMu.Lock()
	level := r.compat
	r.compatMu.Unlock()
	if level == sr.CompatNone || (s.Type != sr.TypeAvro && s.Type != 0) {
		return nil
	}
	next, err := avro.ParseWithCache(s.Schema, "", &avro.SchemaCache{})
	if err != nil {
		return fmt.Errorf("invalid Avro schema: %w", err)
	}
	transitive := level == sr.CompatBackwardTransitive || level == sr.CompatForwardTransitive || level == sr.CompatFullTransitive
	for v := latestVersion(r.reg, subject); v >= 1; v-- {
		old, ok := r.reg.GetSchema(subject, v)
		if !ok {
			continue
		}
		if old.Schema.Schema == s.Schema {
			return nil // already registered: the registry returns its id
		}
		prev, err := avro.ParseWithCache(old.Schema.Schema, "", &avro.SchemaCache{})
		if err != nil {
			return nil
		}
		c := avro.NewSchemaCompatibility()
		backward := level != sr.CompatForward && level != sr.CompatForwardTransitive
		forward := level != sr.CompatBackward && level != sr.CompatBackwardTransitive
		if backward {
			if err := c.Compatible(next, prev); err != nil {
				return fmt.Errorf("schema being registered is incompatible with an earlier schema for subject %q (version %d, %s): new schema cannot read old data: %v", subject, v, level, err)
			}
		}
		if forward {
			if err := c.Compatible(prev, next); err != nil {
				return fmt.Errorf("schema being registered is incompatible with an earlier schema for subject %q (version %d, %s): old schema cannot read new data: %v", subject, v, level, err)
			}
		}
		if !transitive {
			return nil
		}
	}
	return nil
}

// latestVersion returns the highest version of subject, 0 if none.
func latestVersion(reg *srfake.Registry, subject string) int {
	if !reg.SubjectExists(subject) {
		return 0
	}
	v := 0
	for {
		if _, ok := reg.GetSchema(subject, v+1); !ok {
			break
		}
		v++
	}
	return v
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error_code": code, "message": msg})
}
