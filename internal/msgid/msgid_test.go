package msgid_test

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/go-eventbus/eventbus/internal/msgid"
	"github.com/go-eventbus/eventbus/modelevent"
)

// TestDeriveKeepsStoredIDs: Derive gives the ids the kafka, nats and amqp backends
// gave before they shared it (recorded from their own copies); rows already stored
// carry them, so none may change.
func TestDeriveKeepsStoredIDs(t *testing.T) {
	cases := []struct{ readable, want string }{
		{"kafka:orders/3/42", "kafka:orders/3/42"},
		{"nats:ORDERS/42", "nats:ORDERS/42"},
		{strings.Repeat("x", 64), strings.Repeat("x", 64)},
		{strings.Repeat("x", 65), "9537c5fd-f120-882f-bd58-d25e9ed583f5"},
		// 33 characters, 66 bytes: the length is in bytes.
		{strings.Repeat("é", 33), "f696c24a-e52a-82f9-b6d5-feaed130d4d1"},
		{"kafka:" + strings.Repeat("t", 200) + "/0/1", "c87a3209-208b-87fc-8977-d454499fa3ba"},
		{"nats:" + strings.Repeat("s", 80) + "/42", "e14cb952-9a66-843d-89fa-bbb2d2a9796f"},
		{strings.Repeat("s", 80), "e4a44013-b54f-8ed7-bc3e-0f8fb09a44d9"},
	}
	for _, c := range cases {
		if got := msgid.Derive(c.readable); got != c.want {
			t.Errorf("Derive(%q) = %q, want %q", c.readable, got, c.want)
		}
	}
}

// TestUUID: UUID gives the recorded values, is a version 8 UUID that fits the column,
// and lays out its bits as RFC 9562's SHA-256 example does.
func TestUUID(t *testing.T) {
	v8 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for name, want := range map[string]string{
		"":  "e3b0c442-98fc-8c14-9afb-f4c8996fb924",
		"a": "ca978112-ca1b-8dca-bac2-31b39a23dc4d",
		"amqp \"e\" \"k\" 1704164645000000006 {\"n\":\"1\"}\na": "2b2b8c8d-522f-843b-9c9d-e4e5d2f53849",
	} {
		got := msgid.UUID(name)
		if got != want {
			t.Errorf("UUID(%q) = %q, want %q", name, got, want)
		}
		if !v8.MatchString(got) || len(got) > modelevent.MaxMessageUUIDLen {
			t.Errorf("UUID(%q) = %q is not a version 8 UUID within the column", name, got)
		}
	}
	// RFC 9562, appendix B.2: SHA-256 of the DNS namespace followed by the name.
	ns, _ := hex.DecodeString("6ba7b8109dad11d180b400c04fd430c8")
	if got, want := msgid.UUID(string(ns)+"www.example.com"), "5c146b14-3c52-8afd-938a-375d0df1fbf6"; got != want {
		t.Errorf("RFC 9562 B.2 example: %s, want %s", got, want)
	}
}

func ExampleDerive() {
	fmt.Println(msgid.Derive("kafka:orders/3/42"))
	fmt.Println(msgid.Derive("kafka:" + strings.Repeat("t", 200) + "/0/1"))
	// Output:
	// kafka:orders/3/42
	// c87a3209-208b-87fc-8977-d454499fa3ba
}
