package schemaregistrytest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/go-eventbus/eventbus/backends/kafka/schemaregistrytest"
)

const v1 = `{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}`

func TestRegistry(t *testing.T) {
	reg := schemaregistrytest.New(schemaregistrytest.WithBasicAuth("u", "p"))
	defer reg.Close()
	ctx := context.Background()

	anon, _ := sr.NewClient(sr.URLs(reg.URL()))
	var re *sr.ResponseError
	if _, err := anon.SchemaByID(ctx, 1); !errors.As(err, &re) || re.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without credentials: %v", err)
	}
	cl, _ := sr.NewClient(sr.URLs(reg.URL()), sr.BasicAuth("u", "p"))
	ss, err := cl.CreateSchema(ctx, "r-value", sr.Schema{Schema: v1})
	if err != nil {
		t.Fatal(err)
	}
	got, err := cl.SchemaByID(ctx, ss.ID)
	if err != nil || got.Schema != v1 {
		t.Fatalf("by id: %v %q", err, got.Schema)
	}
	if l, err := cl.LookupSchema(ctx, "r-value", sr.Schema{Schema: v1}); err != nil || l.ID != ss.ID {
		t.Fatalf("lookup: %v %d", err, l.ID)
	}
	// BACKWARD: a new field needs a default.
	bad := strings.Replace(v1, `]}`, `,{"name":"b","type":"string"}]}`, 1)
	if _, err := cl.CreateSchema(ctx, "r-value", sr.Schema{Schema: bad}); !errors.As(err, &re) || re.StatusCode != http.StatusConflict {
		t.Fatalf("incompatible: %v", err)
	}
	good := strings.Replace(v1, `]}`, `,{"name":"b","type":"string","default":""}]}`, 1)
	ss2, err := cl.CreateSchema(ctx, "r-value", sr.Schema{Schema: good})
	if err != nil || ss2.ID == ss.ID {
		t.Fatalf("compatible v2: %v", err)
	}
	if latest, err := cl.SchemaByVersion(ctx, "r-value", -1); err != nil || latest.ID != ss2.ID {
		t.Fatalf("latest: %v %d", err, latest.ID)
	}
	reg.SetDown(true)
	if _, err := cl.SchemaByID(ctx, ss.ID); !errors.As(err, &re) || re.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("down: %v", err)
	}
	reg.SetDown(false)
	if _, err := cl.SchemaByID(ctx, ss.ID); err != nil {
		t.Fatal(err)
	}
	if reg.Requests() < 8 {
		t.Fatalf("requests = %d", reg.Requests())
	}
}
