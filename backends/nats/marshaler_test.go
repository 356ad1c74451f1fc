package nats

import (
	"regexp"
	"strings"
	"testing"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	natsgo "github.com/nats-io/nats.go"

	"github.com/go-eventbus/eventbus/internal/msgid"
	"github.com/go-eventbus/eventbus/modelevent"
)

// jsMsg returns a message as a JetStream push consumer delivers it: stream sequence
// seq of stream.
func jsMsg(stream, seq string, h natsgo.Header, data string) *natsgo.Msg {
	return &natsgo.Msg{
		Subject: "orders",
		Reply:   "$JS.ACK." + stream + ".billing.1." + seq + ".7.1700000000000000000.0",
		Sub:     new(natsgo.Subscription),
		Header:  h,
		Data:    []byte(data),
	}
}

// TestUnmarshalMultiValuedHeader: a header with several values is one metadata value,
// the JSON array of them, where NATSMarshaler alone refuses the message.
func TestUnmarshalMultiValuedHeader(t *testing.T) {
	h := natsgo.Header{"tag": {"a", "b<&>"}, "one": {"x"}}
	nm := jsMsg("S", "5", h, "p")
	if _, err := (&wmnats.NATSMarshaler{}).Unmarshal(nm); err == nil {
		t.Fatal("NATSMarshaler accepts several values now; the conversion may be unneeded")
	}
	msg, err := (&marshaler{}).Unmarshal(nm)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Metadata.Get("tag"); got != `["a","b<&>"]` {
		t.Errorf("tag %q, want [\"a\",\"b<&>\"]", got)
	}
	if got := msg.Metadata.Get("one"); got != "x" {
		t.Errorf("one %q, want x", got)
	}
	if len(h["tag"]) != 2 {
		t.Errorf("the delivered message's header was changed: %v", h)
	}
	if string(msg.Payload) != "p" || msg.Metadata.Get(modelevent.MetadataDecodeError) != "" {
		t.Errorf("payload %q, metadata %v", msg.Payload, msg.Metadata)
	}
}

// TestUnmarshalMessageID: the Watermill UUID wins, then Nats-Msg-Id, then the stream
// position; one too long for the store is hashed.
func TestUnmarshalMessageID(t *testing.T) {
	long := strings.Repeat("s", 80)
	v8 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	cases := []struct {
		name string
		msg  *natsgo.Msg
		want string
	}{
		{"watermill", jsMsg("S", "1", natsgo.Header{wmnats.WatermillUUIDHdr: {"u-1"}, natsgo.MsgIdHdr: {"m-1"}}, ""), "u-1"},
		{"msg id", jsMsg("S", "2", natsgo.Header{natsgo.MsgIdHdr: {"m-2"}}, ""), "m-2"},
		{"position", jsMsg("ORDERS", "42", nil, ""), "nats:ORDERS/42"},
		{"long position", jsMsg(long, "42", nil, ""), msgid.UUID("nats:" + long + "/42")},
		{"long msg id", jsMsg("S", "3", natsgo.Header{natsgo.MsgIdHdr: {long}}, ""), msgid.UUID(long)},
	}
	for _, c := range cases {
		msg, err := (&marshaler{}).Unmarshal(c.msg)
		if err != nil {
			t.Fatal(err)
		}
		if msg.UUID != c.want {
			t.Errorf("%s: UUID %q, want %q", c.name, msg.UUID, c.want)
		}
		if strings.HasPrefix(c.name, "long") && !v8.MatchString(msg.UUID) {
			t.Errorf("%s: %q is not a version 8 UUID", c.name, msg.UUID)
		}
		if _, ok := msg.Metadata[natsgo.MsgIdHdr]; ok {
			t.Errorf("%s: Nats-Msg-Id left in the metadata", c.name)
		}
	}
	// Without JetStream metadata: a hash of subject, headers and payload.
	core := func() *natsgo.Msg {
		return &natsgo.Msg{Subject: "s", Header: natsgo.Header{"k": {"v"}}, Data: []byte("d")}
	}
	a, _ := (&marshaler{}).Unmarshal(core())
	b, _ := (&marshaler{}).Unmarshal(core())
	other := core()
	other.Data = []byte("e")
	c, _ := (&marshaler{}).Unmarshal(other)
	if !v8.MatchString(a.UUID) || a.UUID != b.UUID || a.UUID == c.UUID {
		t.Errorf("core messages: %q, %q (same), %q (other payload)", a.UUID, b.UUID, c.UUID)
	}
}

// TestUnmarshalBadUUIDIsPoisoned: a Watermill UUID header with different values, or
// one longer than the store keeps, is a decode error; the message gets its position.
func TestUnmarshalBadUUIDIsPoisoned(t *testing.T) {
	cases := []struct {
		vs     []string
		reason string
	}{
		{[]string{"a", "b"}, `2 different values ["a","b"]`},
		{[]string{strings.Repeat("x", 65)}, "65 bytes long"},
	}
	for _, c := range cases {
		msg, err := (&marshaler{}).Unmarshal(jsMsg("S", "9", natsgo.Header{wmnats.WatermillUUIDHdr: c.vs}, "p"))
		if err != nil {
			t.Fatal(err)
		}
		if msg.UUID != "nats:S/9" {
			t.Errorf("%v: UUID %q, want nats:S/9", c.vs, msg.UUID)
		}
		if got := msg.Metadata.Get(modelevent.MetadataDecodeError); !strings.Contains(got, c.reason) {
			t.Errorf("%v: decode error %q, want %q", c.vs, got, c.reason)
		}
	}
	// The same UUID twice is one UUID.
	msg, _ := (&marshaler{}).Unmarshal(jsMsg("S", "9", natsgo.Header{wmnats.WatermillUUIDHdr: {"u", "u"}}, ""))
	if msg.UUID != "u" || msg.Metadata.Get(modelevent.MetadataDecodeError) != "" {
		t.Errorf("repeated UUID: %q %v", msg.UUID, msg.Metadata)
	}
}
