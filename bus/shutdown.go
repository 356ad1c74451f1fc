package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/control"
)

// Shutdown stops the bus in two phases, as River's Stop and StopAndCancel do:
//
//  1. It stops taking messages (every subscription is closed, no consumer can be added
//     or started), stops the control plane (deregistering the process takes at most
//     5s), the pruner and the waits between retries (those messages are nacked, for
//     redelivery), and waits for the scheduled retries and publishes being run: until
//     ctx's deadline, or without one until ShutdownTimeout after Shutdown began (one
//     still running then is left to its claim, which lapses). It waits for the
//     handlers in flight to return until ctx ends: without a deadline in ctx, as long
//     as they run. Handlers may still Publish meanwhile. A message the
//     router hands over as it closes, after Shutdown saw no handler running, is
//     refused unhandled (nacked: the broker delivers it again), so that no handler
//     runs whose row could no longer be stored.
//  2. If handlers are still running when ctx ends, it cancels their contexts and
//     gives them a tenth of ShutdownTimeout more to return; a handler that honours its
//     context returns then, and its ModelEvent is recorded.
//
// Then Publish is refused (ErrClosed), the publishes still in progress get a tenth of
// ShutdownTimeout to end, the outbox relay stops, and every pending ModelEvent is
// flushed: until ctx's deadline, and at least a tenth of ShutdownTimeout however late
// the flush starts; without a deadline in ctx, for ShutdownTimeout counted from when
// the handlers are done, however long they ran. Then the backend and the store the bus
// opened are closed. Nothing the bus does touches them afterwards: a handler that
// ignored its cancelled context and returns later has its Publish refused and its row
// not recorded; Shutdown's error counts such handlers, and the rows the store did not
// take.
//
// Shutdown is idempotent: a second call waits for the first and returns its error. It
// is safe to call concurrently with Publish and Run.
func (b *Bus) Shutdown(ctx context.Context) error {
	b.closeOnce.Do(func() {
		b.closeErr = b.shutdown(ctx)
		close(b.done)
		b.log.Info("eventbus: closed")
	})
	<-b.done
	return b.closeErr
}

// Close is Shutdown with a context that ends after ShutdownTimeout.
func (b *Bus) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.ShutdownTimeout)
	defer cancel()
	return b.Shutdown(ctx)
}

func (b *Bus) shutdown(ctx context.Context) error {
	// The scheduler's runs have until ctx's deadline, or ShutdownTimeout from now.
	deadline, hasDeadline := ctx.Deadline()
	if !hasDeadline {
		deadline = time.Now().Add(b.cfg.ShutdownTimeout)
	}
	b.mu.Lock()
	b.closed = true
	started := b.started
	b.mu.Unlock()
	b.stopDelivery()
	defer b.cancelWork()
	if b.brokerWatching != nil {
		<-b.brokerWatching
	}
	var errs []error
	if b.controlCancel != nil {
		b.controlCancel()
		<-b.controlDone
		dctx, cancel := context.WithTimeout(context.Background(), min(5*time.Second, b.cfg.ShutdownTimeout))
		if err := b.ctl.Deregister(dctx, b.processID); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	b.stopRetention()
	b.stopScheduler(deadline) // scheduler.go: the scheduled retries and publishes running now
	grace := b.cfg.ShutdownTimeout / 10
	if started {
		w := &handlersWait{b: b, routerClosed: make(chan error, 1)}
		go func() { w.routerClosed <- b.router.Close() }()
		if !w.wait(ctx) {
			b.log.Warn("eventbus: shutdown: cancelling the contexts of the handlers still running", "in_flight", b.inFlight())
			b.cancelWork()
			gctx, cancel := context.WithTimeout(context.Background(), grace)
			if !w.wait(gctx) {
				if n := b.inFlight(); n > 0 {
					errs = append(errs, fmt.Errorf("eventbus: shutdown: %d handlers still running after their contexts were cancelled: "+
						"their publishes and rows are refused", n))
				} else {
					errs = append(errs, errors.New("eventbus: shutdown: the router did not close in time"))
				}
			}
			cancel()
		}
	}
	b.cancelWork()
	b.mu.Lock()
	for _, c := range b.consumers {
		c.state = control.Stopped
	}
	b.mu.Unlock()
	pctx, cancel := context.WithTimeout(context.Background(), grace)
	if n := b.pubs.close(pctx); n > 0 {
		errs = append(errs, fmt.Errorf("eventbus: shutdown: %d publishes still in progress", n))
	}
	cancel()
	// The final flush has until ctx's deadline. Without one, Shutdown waited as long as
	// the handlers ran, and the rows they left get ShutdownTimeout from now, when they
	// are done, not what is left of it since Shutdown began (only the floor, a tenth,
	// when they ran long). release gives the flush at least a tenth in either case.
	flush := deadline
	if !hasDeadline {
		flush = time.Now().Add(b.cfg.ShutdownTimeout)
	}
	errs = append(errs, b.release(flush))
	return errors.Join(errs...)
}

// handlersWait waits for the router to close and the handlers to return.
type handlersWait struct {
	b            *Bus
	routerClosed chan error // the router's Close result
	closed       bool       // routerClosed was received
}

// wait waits until the router has closed and no handler is running, or until ctx
// ends; it reports whether they did (the router's own timeout does not matter).
//
// The router's Close returns once its handlers returned and its subscriptions ended,
// but a message it handed over just before (a delivery whose goroutine has not reached
// the consumer yet) may start after that. Such a delivery must not run: Shutdown would
// not wait for it, and its row would not be stored (the recorder closes next), so
// after a restart an idempotent consumer would run it again. Once the router closed,
// wait sets drained before it counts the handlers running, and a delivery counts
// itself running before it looks at drained (consumer.routed): either wait sees it
// running and waits for it, or it sees drained and is refused, unhandled and nacked,
// for its redelivery.
func (w *handlersWait) wait(ctx context.Context) bool {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if w.closed {
			w.b.drained.Store(true)
			if w.b.inFlight() == 0 {
				return true
			}
		}
		select {
		case <-w.routerClosed:
			w.closed = true
		case <-tick.C:
		case <-ctx.Done():
			if w.closed {
				w.b.drained.Store(true)
			}
			return w.closed && w.b.inFlight() == 0
		}
	}
}

// inFlight counts the messages being handled by every consumer.
func (b *Bus) inFlight() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n int64
	for _, c := range b.consumers {
		n += c.inFlight.Load()
	}
	return n
}

// gate admits calls until it is closed, and lets the closer wait for those admitted.
// Its lock is held only to count, never across the calls.
type gate struct {
	mu     sync.Mutex
	closed bool
	n      int
	idle   chan struct{} // closed when n drops to 0 after close
}

// enter admits a call, or reports false once the gate is closed.
func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

// leave ends a call admitted by enter.
func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

// close refuses new calls and waits for the admitted ones until ctx ends; it returns
// how many are still running.
func (g *gate) close(ctx context.Context) int {
	g.mu.Lock()
	g.closed = true
	if g.n == 0 {
		g.mu.Unlock()
		return 0
	}
	idle := make(chan struct{})
	g.idle = idle
	g.mu.Unlock()
	select {
	case <-idle:
		return 0
	case <-ctx.Done():
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.n
	}
}

// gatedPublisher publishes through pub while the bus's gate is open: the poison queue
// of a handler that returns after Shutdown never reaches a closed backend.
type gatedPublisher struct {
	b   *Bus
	pub message.Publisher
}

func (p gatedPublisher) Publish(topic string, msgs ...*message.Message) error {
	if !p.b.pubs.enter() {
		return fmt.Errorf("eventbus: publish %q: %w", topic, ErrClosed)
	}
	defer p.b.pubs.leave()
	return p.pub.Publish(topic, msgs...)
}

func (p gatedPublisher) Close() error { return nil }
