package middleware

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/oklog/ulid/v2"

	"github.com/go-eventbus/eventbus/modelevent"
)

// IdempotencyConfig configures Idempotent.
type IdempotencyConfig struct {
	// Store holds the rows and the claims: the SQL store, or a store forwarding its
	// modelevent.RunClaimer methods.
	Store modelevent.RunClaimer
	// Holder names this process in the claims (the bus process id); each delivery
	// adds a suffix of its own.
	Holder string
	// Handler, when set, is the handler every message of this middleware is consumed
	// by (one consumer's chain), which then need not be looked up in each message's
	// context; empty: ConsumerFromContext.
	Handler string
	// ClaimTTL is how long a claim on a (message, handler) holds: a duplicate
	// delivered meanwhile waits for the first run's outcome, and one delivered after a
	// crash of the claiming process waits at most this long. It should exceed the
	// handler's longest run. Default 1m.
	ClaimTTL time.Duration
	// PollInterval is how often a waiting duplicate looks at the claim and the row
	// again. Default 50ms.
	PollInterval time.Duration
	// OnDuplicate, when not nil, is called for every delivery acked as a duplicate
	// (for metrics).
	OnDuplicate func(handler, topic string)

	batch *checkBatcher
	runs  *atomic.Uint64 // numbers the deliveries in their holder names
}

// Idempotent returns middleware that runs a handler at most once per message where the
// store can arbitrate: a delivery whose consumed row has already succeeded is acked
// without running the handler and counted on the row (ModelEvent.Duplicates); a
// delivery that finds another delivery of the same message running (a claim in
// eventbus_claims, taken before the handler runs) waits for its outcome, and is then a
// duplicate if it succeeded, or runs if it failed or its claim lapsed. Successful runs
// keep their claim until it lapses, so a duplicate delivered before the row is stored
// still waits. The happy path costs one look-up of the row and one insert of the
// claim, for concurrent deliveries together (one look-up and one insert for all that
// arrive while the previous ones run: modelevent.SQLStore.CheckAndClaimMany). It belongs outside the recording (Chain.Outer). What it does not guarantee:
// docs/retries.md.
func Idempotent(c IdempotencyConfig) (message.HandlerMiddleware, error) {
	if c.Store == nil {
		return nil, errors.New("idempotency: idempotent consumers need the SQL store (store.driver)")
	}
	if c.Holder == "" {
		c.Holder = "process"
	}
	if c.ClaimTTL <= 0 {
		c.ClaimTTL = time.Minute
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 50 * time.Millisecond
	}
	c.batch = &checkBatcher{store: c.Store, ttl: c.ClaimTTL}
	c.runs = new(atomic.Uint64)
	// The holder of a delivery's claim: this process (unique among processes) and a
	// number unique in it, "/" + base 36.
	prefix := c.Holder + "/" + ulid.Make().String()[20:] + "."
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			handler := c.Handler
			if handler == "" {
				handler, _ = ConsumerFromContext(msg.Context())
			}
			holder := prefix + strconv.FormatUint(c.runs.Add(1), 36)
			dup, err := c.claim(msg.Context(), msg.UUID, handler, holder)
			if err != nil {
				return nil, err
			}
			if dup {
				if err := c.Store.AddDuplicate(context.WithoutCancel(msg.Context()), msg.UUID, handler); err != nil {
					return nil, fmt.Errorf("%w: %w", ErrNotRecorded, err)
				}
				if c.OnDuplicate != nil {
					_, topic := ConsumerFromContext(msg.Context())
					c.OnDuplicate(handler, topic)
				}
				return nil, nil
			}
			out, err := h(msg)
			if err != nil {
				// Let a redelivery (or a scheduled retry) run it at once.
				_ = c.Store.ReleaseRun(context.WithoutCancel(msg.Context()), msg.UUID, handler, holder)
			}
			return out, err
		}
	}, nil
}

// claim reports whether the delivery is a duplicate; if not, holder holds the claim
// to run it. It waits while another delivery's claim holds.
func (c IdempotencyConfig) claim(ctx context.Context, uuid, handler, holder string) (bool, error) {
	for {
		r := c.batch.do(ctx, modelevent.RunKey{MessageUUID: uuid, Handler: handler, Holder: holder})
		st, won, taken, err := r.Status, r.Won, r.Taken, r.err
		if err != nil {
			return false, fmt.Errorf("%w: %w", ErrNotRecorded, err)
		}
		if st == modelevent.StatusSucceeded {
			return true, nil
		}
		if won && taken {
			// The previous holder's claim lapsed: its run may have ended meanwhile.
			if st, _, err := c.Store.ConsumedStatus(ctx, uuid, handler); err == nil && st == modelevent.StatusSucceeded {
				return true, nil
			}
		}
		if won {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("%w: waiting for another delivery of %s to %s: %w", ErrAborted, uuid, handler, ctx.Err())
		case <-time.After(c.PollInterval):
		}
	}
}

// checkBatcher runs the checks of concurrent deliveries together: the first caller
// runs a batch of every check queued by then, and keeps running the batches queued
// meanwhile until none is left; the others wait for their result.
type checkBatcher struct {
	store modelevent.RunClaimer
	ttl   time.Duration

	mu      sync.Mutex
	pending []*checkReq
	busy    bool
}

type checkReq struct {
	key modelevent.RunKey
	modelevent.RunClaim
	err  error
	done chan struct{}
}

// maxCheckBatch caps the runs of one batch (its statements have 2 and 4 parameters per
// run).
const maxCheckBatch = 256

func (b *checkBatcher) do(ctx context.Context, key modelevent.RunKey) *checkReq {
	r := &checkReq{key: key, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	if b.busy {
		b.mu.Unlock()
		<-r.done
		return r
	}
	b.busy = true
	for len(b.pending) > 0 {
		n := min(len(b.pending), maxCheckBatch)
		batch := b.pending[:n:n]
		b.pending = b.pending[n:]
		b.mu.Unlock()
		keys := make([]modelevent.RunKey, len(batch))
		for i, q := range batch {
			keys[i] = q.key
		}
		res, err := b.store.CheckAndClaimMany(context.WithoutCancel(ctx), keys, b.ttl)
		for i, q := range batch {
			if err != nil {
				q.err = err
			} else {
				q.RunClaim = res[i]
			}
			close(q.done)
		}
		b.mu.Lock()
	}
	b.busy = false
	b.mu.Unlock()
	return r
}
