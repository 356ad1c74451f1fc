package kafka

import (
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

const testOrderSchema = `{"type":"record","name":"Order","namespace":"shop","fields":[
 {"name":"id","type":"long"},
 {"name":"total","type":"double"},
 {"name":"note","type":["null","string"],"default":null},
 {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]},"default":"NEW"},
 {"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[{"name":"sku","type":"string"},{"name":"qty","type":"int"}]}},"default":[]},
 {"name":"tags","type":{"type":"map","values":"string"},"default":{}},
 {"name":"at","type":["null",{"type":"long","logicalType":"timestamp-millis"}],"default":null},
 {"name":"choice","type":["null","int","string","Item"],"default":null}
]}`

func parse(t *testing.T, s string) avro.Schema {
	t.Helper()
	sch, err := avro.ParseWithCache(s, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func TestAvroJSONRoundTrip(t *testing.T) {
	s := parse(t, testOrderSchema)
	cases := []struct{ in, out string }{
		{`{"id":42,"total":9.5}`, `{"id":42,"total":9.5,"note":null,"status":"NEW","items":[],"tags":{},"at":null,"choice":null}`},
		{`{"id":1,"total":2,"note":"hi","status":"PAID","items":[{"sku":"a","qty":3}],"tags":{"k":"v"},"at":"2024-01-02T03:04:05.123Z","choice":7}`,
			`{"id":1,"total":2,"note":"hi","status":"PAID","items":[{"sku":"a","qty":3}],"tags":{"k":"v"},"at":"2024-01-02T03:04:05.123Z","choice":7}`},
		{`{"id":1,"total":2,"choice":"x"}`, `{"id":1,"total":2,"note":null,"status":"NEW","items":[],"tags":{},"at":null,"choice":"x"}`},
		{`{"id":1,"total":2,"choice":{"sku":"b","qty":1}}`, `{"id":1,"total":2,"note":null,"status":"NEW","items":[],"tags":{},"at":null,"choice":{"sku":"b","qty":1}}`},
		{`{"id":1,"total":2,"at":1704164645123}`, `{"id":1,"total":2,"note":null,"status":"NEW","items":[],"tags":{},"at":"2024-01-02T03:04:05.123Z","choice":null}`},
	}
	for _, c := range cases {
		v, err := jsonToAvro(s, []byte(c.in))
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		bin, err := avro.Marshal(s, v)
		if err != nil {
			t.Fatalf("%s: marshal: %v", c.in, err)
		}
		var back any
		if err := avro.Unmarshal(s, bin, &back); err != nil {
			t.Fatalf("%s: unmarshal: %v", c.in, err)
		}
		out, err := avroToJSON(s, back)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != c.out {
			t.Errorf("%s:\n got %s\nwant %s", c.in, out, c.out)
		}
	}
}

func TestAvroJSONMismatch(t *testing.T) {
	s := parse(t, testOrderSchema)
	cases := []struct{ in, want string }{
		{`{"id":1,"total":"9.5"}`, `field "total": want double, got string "9.5"`},
		{`{"total":1}`, `field "id": missing, and schema shop.Order gives it no default`},
		{`{"id":1.5,"total":1}`, `field "id": want long (64-bit integer), got number 1.5`},
		{`{"id":1,"total":1,"extra":true}`, `field "extra": not in schema shop.Order`},
		{`{"id":1,"total":1,"status":"LOST"}`, `field "status": "LOST" is not a symbol of enum shop.Status`},
		{`{"id":1,"total":1,"items":[{"sku":"a","qty":"x"}]}`, `field "items[0].qty": want int, got string "x"`},
		{`{"id":1,"total":1,"note":5}`, `field "note": want string, got number 5`},
		{`{"id":1,"total":1,"choice":true}`, `field "choice": want one of [null, int, string, shop.Item], got boolean`},
		{`[1]`, `want shop.Order, got array`},
		{`{"id":1`, `payload is not JSON`},
	}
	for _, c := range cases {
		_, err := jsonToAvro(s, []byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.in, err, c.want)
		}
	}
}
