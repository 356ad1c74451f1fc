package sqlbackend

import (
	"fmt"
	"hash/fnv"
)

// maxIdentifier is the longest table name every supported database keeps intact
// (PostgreSQL truncates identifiers to 63 bytes, MySQL refuses more than 64).
const maxIdentifier = 63

// tables names the tables of a topic. Topics contain only [A-Za-z0-9-$:._]
// (watermill-sql checks that before any query), so quoting is enough.
type tables struct {
	driver string
	prefix string
}

// messages returns the unquoted name of topic's messages table.
func (t tables) messages(topic string) string { return t.name("messages_", topic) }

// offsets returns the unquoted name of topic's consumer offsets table.
func (t tables) offsets(topic string) string { return t.name("offsets_", topic) }

// name is prefix+kind+topic, shortened with a hash of topic when that is too long, so
// that two topics never share a table.
func (t tables) name(kind, topic string) string {
	n := t.prefix + kind + topic
	if len(n) <= maxIdentifier {
		return n
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(topic))
	suffix := fmt.Sprintf("_%08x", h.Sum32())
	keep := maxIdentifier - len(t.prefix) - len(kind) - len(suffix)
	return t.prefix + kind + topic[:keep] + suffix
}

// quote quotes an identifier for the driver.
func (t tables) quote(name string) string {
	if t.driver == DriverMySQL {
		return "`" + name + "`"
	}
	return `"` + name + `"`
}

// publishLocks returns the unquoted name of the table of per-topic publish locks
// (MySQL and MariaDB only).
func (t tables) publishLocks() string { return t.prefix + "publish_locks" }
