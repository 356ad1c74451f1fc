package nats

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	natsgo "github.com/nats-io/nats.go"

	"github.com/go-eventbus/eventbus/internal/msgid"
	"github.com/go-eventbus/eventbus/modelevent"
)

// marshaler is watermill-nats's NATSMarshaler (the UUID in header
// _watermill_message_uuid, metadata as headers) made to accept every JetStream message,
// whoever published it. Marshal is NATSMarshaler's. Unmarshal never returns an error
// (watermill-nats drops a message it cannot unmarshal without acking it, so JetStream
// would deliver it again after every ack_wait, forever):
//
//   - a header with several values becomes one metadata value, the JSON array of its
//     values (["a","b"]), where NATSMarshaler refuses the message;
//   - a message without a Watermill UUID gets messageID: its Nats-Msg-Id, or
//     "nats:<stream>/<stream sequence>";
//   - a message whose UUID header is unusable (several different values, or longer
//     than the store keeps), or that NATSMarshaler still cannot unmarshal, is handed
//     over with messageID and modelevent.MetadataDecodeError set to the reason, so the
//     bus poisons it.
type marshaler struct {
	wmnats.NATSMarshaler
}

var _ wmnats.MarshalerUnmarshaler = (*marshaler)(nil)

// Unmarshal turns a NATS message into a Watermill message; see marshaler.
func (m *marshaler) Unmarshal(nm *natsgo.Msg) (*message.Message, error) {
	in := nm
	if h := joinMultiValued(nm.Header); h != nil {
		in = &natsgo.Msg{Subject: nm.Subject, Header: h, Data: nm.Data}
	}
	msg, err := m.NATSMarshaler.Unmarshal(in)
	var reason string
	if err != nil {
		reason = fmt.Sprintf("unmarshal: %v", err)
		msg = message.NewMessage("", nm.Data)
	} else {
		reason = badUUID(nm.Header.Values(wmnats.WatermillUUIDHdr))
	}
	if msg.UUID == "" || reason != "" {
		msg.UUID = messageID(nm)
	}
	if reason != "" {
		msg.Metadata.Set(modelevent.MetadataDecodeError, reason)
	}
	return msg, nil
}

// joinMultiValued returns a copy of h in which every header with several values (but
// the Watermill UUID, which badUUID judges) has one: the JSON array of the values. It
// returns nil when no header has several values.
func joinMultiValued(h natsgo.Header) natsgo.Header {
	var out natsgo.Header
	for k, vs := range h {
		if len(vs) < 2 || k == wmnats.WatermillUUIDHdr {
			continue
		}
		if out == nil {
			out = make(natsgo.Header, len(h))
			for k, vs := range h {
				out[k] = vs
			}
		}
		out[k] = []string{jsonArray(vs)}
	}
	return out
}

// jsonArray encodes vs as a JSON array of strings, without escaping <, > and &.
func jsonArray(vs []string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(vs) // a []string always encodes
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

// badUUID says why the values of a Watermill UUID header cannot be a message UUID, or
// returns "".
func badUUID(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	for _, v := range vs[1:] {
		if v != vs[0] {
			return fmt.Sprintf("header %s has %d different values %s; a message has one UUID", wmnats.WatermillUUIDHdr, len(vs), jsonArray(vs))
		}
	}
	if len(vs[0]) > modelevent.MaxMessageUUIDLen {
		return fmt.Sprintf("header %s is %d bytes long, at most %d are kept", wmnats.WatermillUUIDHdr, len(vs[0]), modelevent.MaxMessageUUIDLen)
	}
	return ""
}

// messageID is the message UUID of a message that carries no usable Watermill UUID,
// the same on every redelivery: its Nats-Msg-Id header (JetStream's de-duplication
// id) if it has one, else "nats:<stream>/<stream sequence>" from its JetStream
// metadata, through msgid.Derive (a name-based UUID of it when it is longer than the
// store keeps). A message without JetStream metadata (not one this backend consumes)
// gets msgid.UUID of its subject, headers and payload.
func messageID(nm *natsgo.Msg) string {
	id := nm.Header.Get(natsgo.MsgIdHdr)
	if id == "" {
		if meta, err := nm.Metadata(); err == nil {
			id = "nats:" + meta.Stream + "/" + strconv.FormatUint(meta.Sequence.Stream, 10)
		}
	}
	if id != "" {
		return msgid.Derive(id)
	}
	keys := make([]string, 0, len(nm.Header))
	for k := range nm.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var name strings.Builder
	fmt.Fprintf(&name, "nats:%q\n", nm.Subject)
	for _, k := range keys {
		fmt.Fprintf(&name, "%q:%q\n", k, nm.Header[k])
	}
	name.Write(nm.Data)
	return msgid.UUID(name.String())
}
