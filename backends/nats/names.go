package nats

import (
	"fmt"
	"hash/fnv"
	"strings"
)

// maxNameLen keeps names under JetStream's 255-byte limit, with room for a prefix.
const maxNameLen = 200

// Name turns s (a topic or a consumer name) into a name NATS accepts for a stream, a
// durable consumer or a queue group: ASCII letters, digits, '-' and '_' are kept, '.'
// becomes '_', and every other character (spaces, '*', '>', '/', '\', '~', non-ASCII)
// becomes '_'. A result longer than 200 bytes is cut to 191 and ends with '~' and 8 hex
// digits of a hash of s, so it stays unique. The mapping is readable rather than
// one-to-one ("a.b" and "a_b" give the same name); the backend detects such a
// collision when it provisions and fails with an error naming both.
func Name(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	out := b.String()
	if len(out) > maxNameLen {
		h := fnv.New32a()
		_, _ = h.Write([]byte(s))
		out = fmt.Sprintf("%s~%08x", out[:maxNameLen-9], h.Sum32())
	}
	return out
}

// Subject returns the NATS subject of topic: SubjectPrefix followed by the topic.
func (c Config) Subject(topic string) string { return c.SubjectPrefix + topic }

// StreamName returns the name of the stream the backend provisions for topic:
// StreamPrefix followed by Name(topic), e.g. "shop.orders" → "shop_orders".
func (c Config) StreamName(topic string) string { return c.StreamPrefix + Name(topic) }

// DurableName returns the durable JetStream consumer of the bus consumer named
// consumer: DurablePrefix followed by Name(consumer), e.g. "billing.eu" → "billing_eu".
func (c Config) DurableName(consumer string) string { return c.DurablePrefix + Name(consumer) }

// QueueGroup returns the queue group of the bus consumer named consumer:
// QueueGroupPrefix followed by Name(consumer).
func (c Config) QueueGroup(consumer string) string { return c.QueueGroupPrefix + Name(consumer) }

// deliverSubject is where JetStream pushes the messages of a durable consumer; every
// process running the consumer subscribes to it in the consumer's queue group.
func deliverSubject(stream, durable string) string {
	return "_eventbus.deliver." + stream + "." + durable
}

// checkSubject reports whether subject is a valid literal NATS subject.
func checkSubject(topic, subject string) error {
	if topic == "" {
		return fmt.Errorf("nats: empty topic")
	}
	for _, tok := range strings.Split(subject, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
			return fmt.Errorf("nats: topic %q gives subject %q, which is not a valid NATS subject (tokens separated by single dots, no spaces, '*' or '>')", topic, subject)
		}
	}
	return nil
}
