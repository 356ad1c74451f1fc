package amqp

import (
	"math"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// TestHeaderText: every type an AMQP table can hold becomes text, never an error.
func TestHeaderText(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{"plain", "plain"},
		{int8(-8), "-8"},
		{byte(200), "200"},
		{int16(-300), "-300"},
		{int32(3), "3"},
		{int64(-9007199254740993), "-9007199254740993"},
		{int(42), "42"},
		{uint16(7), "7"},
		{uint32(4000000000), "4000000000"},
		{float32(0.1), "0.1"},
		{float64(0.5), "0.5"},
		{1e21, "1000000000000000000000"},
		{math.NaN(), "NaN"},
		{math.Inf(-1), "-Inf"},
		{true, "true"},
		{false, "false"},
		{amqp091.Decimal{Scale: 2, Value: 12345}, "123.45"},
		{amqp091.Decimal{Scale: 3, Value: -5}, "-0.005"},
		{amqp091.Decimal{Scale: 0, Value: 17}, "17"},
		{amqp091.Decimal{Scale: 2, Value: math.MinInt32}, "-21474836.48"},
		{time.Date(2024, 3, 1, 12, 30, 0, 0, time.FixedZone("CET", 3600)), "2024-03-01T11:30:00Z"},
		{[]byte("bytes"), "bytes"},
		{[]byte{0xff, 0x00}, "/wA="},
		{nil, ""},
		{amqp091.Table{"a": int64(1), "b": []any{"x<&>", true, nil, 2.5}, "c": amqp091.Table{"d": amqp091.Decimal{Scale: 1, Value: 15}}}, `{"a":1,"b":["x<&>",true,null,2.5],"c":{"d":1.5}}`},
		{[]any{int32(1), math.Inf(1), time.Unix(0, 0), []byte("b")}, `[1,"+Inf","1970-01-01T00:00:00Z","b"]`},
		{[]any{}, `[]`},
		{struct{ X int }{1}, "{1}"},
	}
	for _, c := range cases {
		if got := headerText(c.in); got != c.want {
			t.Errorf("headerText(%#v) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestTextHeaders: only the values that are not strings are converted, the UUID header
// is left to Watermill, and the delivery's table is not changed.
func TestTextHeaders(t *testing.T) {
	strs := amqp091.Table{"a": "b"}
	if got := textHeaders(strs, "uuid"); got["a"] != "b" || len(got) != 1 {
		t.Fatalf("string table changed: %v", got)
	}
	in := amqp091.Table{"n": int32(3), "s": "x", "uuid": int32(9)}
	got := textHeaders(in, "uuid")
	if got["n"] != "3" || got["s"] != "x" || got["uuid"] != int32(9) {
		t.Fatalf("converted %v", got)
	}
	if in["n"] != int32(3) {
		t.Fatalf("the delivery's table was changed: %v", in)
	}
}
