package bus

import (
	"context"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/modelevent"
)

type testKey struct{}

// TestDeliveryIsUncancelledContext: a delivery is the message's context without its
// cancellation, as context.WithoutCancel makes it: the message's values, the
// correlation id, no deadline, Err and Cause nil after the message's context ended.
func TestDeliveryIsUncancelledContext(t *testing.T) {
	cause := errors.New("router closed")
	parent, cancel := context.WithCancelCause(context.WithValue(context.Background(), testKey{}, "v"))
	parent, cancelDeadline := context.WithTimeout(parent, 1<<40)
	defer cancelDeadline()
	msg := message.NewMessage("u-1", nil)
	msg.Metadata.Set(modelevent.MetadataCorrelationID, "corr-1")
	msg.SetContext(parent)
	c := &consumer{name: "h", topic: "t", stopping: context.Background(), cancelled: context.Background()}
	d := c.newDelivery(msg)
	defer d.done()

	cancel(cause)
	if got := d.Value(testKey{}); got != "v" {
		t.Errorf("Value(testKey) = %v, want the message context's value", got)
	}
	if got := CorrelationIDFromContext(d); got != "corr-1" {
		t.Errorf("correlation id = %q, want corr-1", got)
	}
	if _, ok := d.Deadline(); ok {
		t.Error("a delivery has a deadline")
	}
	if d.Done() != nil || d.Err() != nil || context.Cause(d) != nil {
		t.Errorf("delivery after the message context ended: Done %v, Err %v, Cause %v; want nil, nil, nil", d.Done(), d.Err(), context.Cause(d))
	}
	if d.ctx.Err() != nil {
		t.Errorf("the chain's context ended with the message context before an attempt failed: %v", d.ctx.Err())
	}
	d.link()
	if !errors.Is(context.Cause(d.ctx), context.Canceled) {
		t.Errorf("linked chain context: cause %v, want context.Canceled", context.Cause(d.ctx))
	}
}
