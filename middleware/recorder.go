package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-eventbus/eventbus/modelevent"
)

// RecordMode says when a recorded row is stored relative to the message's ack.
type RecordMode string

// The record modes.
const (
	// RecordDurable acks a message only after its row is stored. Rows from concurrent
	// streams are committed together (group commit).
	RecordDurable RecordMode = "durable"
	// RecordBuffered queues rows in a bounded buffer written in batches in the
	// background. A crash loses at most one flush interval of rows, never a message.
	RecordBuffered RecordMode = "buffered"
)

// ErrNotRecorded wraps a failure to store a ModelEvent. A consumed message whose row
// could not be stored is nacked (and redelivered), never poisoned.
var ErrNotRecorded = errors.New("eventbus: event not recorded")

// ErrAborted wraps the error of a delivery abandoned before it finished (its context
// was cancelled: the bus is closing). The message is nacked, never poisoned; the broker
// delivers it again.
var ErrAborted = errors.New("eventbus: delivery aborted")

// ErrUnrecordable wraps the store's refusal to keep a row for its data, after the
// repairs it makes (a *modelevent.RejectedError: a constraint, a value it cannot hold).
// Unlike ErrNotRecorded, writing the row again would fail again: a consumed message
// whose row is refused goes to the poison queue with the reason, and the rows recorded
// with it are stored.
var ErrUnrecordable = errors.New("eventbus: event cannot be recorded")

// ErrRecorderClosed is returned by Record after Close.
var ErrRecorderClosed = errors.New("eventbus: recorder closed")

// RecorderConfig configures a Recorder. The zero value is durable recording with
// batches of 256.
type RecorderConfig struct {
	// Mode is RecordDurable (default) or RecordBuffered.
	Mode RecordMode
	// BatchSize caps the changes written in one store transaction. Default 256.
	BatchSize int
	// FlushInterval is how long buffered mode waits to fill a batch. Default 5ms.
	FlushInterval time.Duration
	// CommitDelay is how long durable mode waits for more changes before it commits a
	// batch smaller than BatchSize (PostgreSQL's commit_delay): a little latency for
	// larger group commits. Default 0: commit what is queued at once.
	CommitDelay time.Duration
	// QueueSize bounds the changes waiting to be written; a full queue blocks Record
	// (backpressure). Default 16 × BatchSize.
	QueueSize int
	// Writers is how many batches may be written at once, each by a writer goroutine
	// of its own (and so on a connection of its own). The changes of one row always go
	// to the same writer, so a row's changes are written in the order they were
	// recorded. More writers help where a commit waits on the network (a store a
	// round trip away); on SQLite, which has one writer, they only contend. Default:
	// the store's WriteConcurrency when it has that method (modelevent.SQLStore: 4 on
	// PostgreSQL, 1 on SQLite and MySQL), else 1.
	Writers int
	// ProducedMode is the mode of produced rows (Publish), when it differs from Mode:
	// RecordBuffered with Mode RecordDurable records published messages in the
	// background (Publish returns once the broker took them) while consumed messages
	// are still acked only after their rows are stored. Default: Mode.
	ProducedMode RecordMode
	// WriteTimeout bounds every wait for the store: a durable caller waiting for its
	// rows, a caller waiting for room in a full queue, one store write. While the store
	// is unreachable the writer keeps retrying (with backoff up to 5s) and a caller
	// gives up after WriteTimeout with ErrNotRecorded; consumed messages are then
	// nacked. Default 10s.
	WriteTimeout time.Duration
	// Backend is the broker name stored in every row, e.g. "memory".
	Backend string
	// Logger receives write errors; nil discards them.
	Logger *slog.Logger
	// Observer, when not nil, is told of every store write and every retry of a
	// handler, for metrics (package metrics implements it).
	Observer RecorderObserver
}

// RecorderObserver is told what a Recorder does, for metrics. Its methods are called
// synchronously, StoreWritten from the writer goroutines and Retrying from handler
// goroutines: they must be quick and safe for concurrent use.
type RecorderObserver interface {
	// StoreWritten is called after each call of the store's Write (each try of a batch
	// while the store fails) with the number of changes, how long the call took and
	// its error: nil; one wrapping modelevent.ErrRejected when the store refused some
	// changes for their data and kept the others; any other when the store is
	// unavailable (the writer tries the batch again).
	StoreWritten(changes int, took time.Duration, err error)
	// Retrying is called when the handler named handler runs again, on a message of
	// topic, after a failed attempt.
	Retrying(handler, topic string)
}

func (c *RecorderConfig) setDefaults() {
	if c.Mode == "" {
		c.Mode = RecordDurable
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 5 * time.Millisecond
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 16 * c.BatchSize
	}
	if c.Writers <= 0 {
		c.Writers = 1
	}
	if c.ProducedMode == "" {
		c.ProducedMode = c.Mode
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports a configuration error, naming the field.
func (c RecorderConfig) Validate() error {
	if c.Mode != "" && c.Mode != RecordDurable && c.Mode != RecordBuffered {
		return fmt.Errorf("record.mode: %q is not a record mode (accepted: durable, buffered)", c.Mode)
	}
	if c.ProducedMode != "" && c.ProducedMode != RecordDurable && c.ProducedMode != RecordBuffered {
		return fmt.Errorf("record.produced_mode: %q is not a record mode (accepted: durable, buffered)", c.ProducedMode)
	}
	if c.WriteTimeout < 0 {
		return fmt.Errorf("record.write_timeout: must not be negative, got %v", c.WriteTimeout)
	}
	if c.Writers < 0 || c.Writers > 64 {
		return fmt.Errorf("record.writers: must be 0 (the store's default) to 64, got %d", c.Writers)
	}
	return nil
}

// Listener is called after changes are stored, from a writer goroutine of the
// Recorder, one call at a time: the changes of one row in the order they were stored
// (with several writers, other rows' changes may interleave). It must return quickly
// (hand slow work to a goroutine).
type Listener func(ctx context.Context, c modelevent.Change)

type writeRequest struct {
	changes []modelevent.Change
	done    chan error // nil: nobody waits
}

// Recorder writes ModelEvent changes to a Store in batches from its writer goroutines
// (RecorderConfig.Writers). Record is safe for concurrent use; concurrent callers share
// one store write (group commit).
type Recorder struct {
	store modelevent.Store
	cfg   RecorderConfig

	// queues holds one queue per writer; a request goes to the queue of its first
	// row's key.
	queues  []chan writeRequest
	closing chan struct{}
	stopped chan struct{}

	closeOnce sync.Once
	mu        sync.RWMutex // guards closed against sends on queue
	closed    bool

	// abort ends the writer's retries and writes when Close's deadline passes.
	abort       context.Context
	abortNow    context.CancelFunc
	lost        atomic.Int64 // changes dropped because Close's deadline passed
	notifyMu    sync.Mutex   // listeners are called by one writer at a time
	queued      atomic.Int64 // changes handed to Record and not yet written
	outage      outage
	listenersMu sync.RWMutex
	listeners   []Listener
}

// NewRecorder starts a Recorder writing to store. Close it to flush.
func NewRecorder(store modelevent.Store, cfg RecorderConfig) (*Recorder, error) {
	if store == nil {
		return nil, errors.New("eventbus: recorder needs a store")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Writers == 0 {
		if wc, ok := store.(interface{ WriteConcurrency() int }); ok {
			cfg.Writers = min(max(wc.WriteConcurrency(), 1), 64)
		}
	}
	cfg.setDefaults()
	r := &Recorder{
		store:   store,
		cfg:     cfg,
		queues:  make([]chan writeRequest, cfg.Writers),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
	}
	r.abort, r.abortNow = context.WithCancel(context.Background())
	per := max(cfg.QueueSize/cfg.Writers, 1)
	var wg sync.WaitGroup
	for i := range r.queues {
		r.queues[i] = make(chan writeRequest, per)
		wg.Add(1)
		go func(q chan writeRequest) { defer wg.Done(); r.run(q) }(r.queues[i])
	}
	go func() { wg.Wait(); close(r.stopped) }()
	return r, nil
}

// Mode returns the recorder's mode.
func (r *Recorder) Mode() RecordMode { return r.cfg.Mode }

// Backend returns the backend name the recorder stores in rows.
func (r *Recorder) Backend() string { return r.cfg.Backend }

// Store returns the store the recorder writes to.
func (r *Recorder) Store() modelevent.Store { return r.store }

// OnChange registers l to be called after every stored change.
func (r *Recorder) OnChange(l Listener) {
	r.listenersMu.Lock()
	r.listeners = append(r.listeners, l)
	r.listenersMu.Unlock()
}

// Record hands changes to the writer. With wait it returns after they are stored (or
// failed to be); without it, once they are queued. A full queue blocks until there is
// room. Every wait ends when ctx does or after WriteTimeout, with an error wrapping
// ErrNotRecorded; rows the store refuses for their data give an error wrapping
// ErrUnrecordable.
func (r *Recorder) Record(ctx context.Context, wait bool, changes ...modelevent.Change) error {
	if len(changes) == 0 {
		return nil
	}
	req := writeRequest{changes: changes}
	if wait {
		req.done = getDone()
	}
	var timeout *time.Timer
	defer func() {
		if timeout != nil {
			putTimer(timeout)
		}
	}()
	expired := func() <-chan time.Time {
		if timeout == nil {
			timeout = getTimer(r.cfg.WriteTimeout)
		}
		return timeout.C
	}
	queue := r.queueOf(&changes[0].Event)
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return ErrRecorderClosed
	}
	select {
	case queue <- req:
	default:
		select {
		case queue <- req:
		case <-ctx.Done():
			r.mu.RUnlock()
			return fmt.Errorf("%w: queue full: %w", ErrNotRecorded, ctx.Err())
		case <-expired():
			r.mu.RUnlock()
			return fmt.Errorf("%w: queue full for %v (is the store reachable?)", ErrNotRecorded, r.cfg.WriteTimeout)
		case <-r.abort.Done():
			// Close's deadline passed: these changes are dropped with the queued ones.
			r.mu.RUnlock()
			r.lost.Add(int64(len(changes)))
			return fmt.Errorf("%w: queue full when the recorder closed", ErrNotRecorded)
		}
	}
	// Counted once queued; the writer may have subtracted them already (QueuedChanges
	// never reports less than 0).
	r.queued.Add(int64(len(changes)))
	r.mu.RUnlock()
	if !wait {
		return nil
	}
	select {
	case err := <-req.done:
		putDone(req.done) // empty again, and the writer sends once: reusable
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNotRecorded, ctx.Err())
	case <-expired():
		return fmt.Errorf("%w: not stored within %v, still queued (is the store reachable?)", ErrNotRecorded, r.cfg.WriteTimeout)
	case <-r.abort.Done():
		// The writer fails the request as it drops it; do not wait for a store call
		// that may ignore its cancelled context.
		return fmt.Errorf("%w: recorder closed before the store took it", ErrNotRecorded)
	}
}

// queueOf returns the queue of the writer of e's row: the same for every change of the
// row (its message UUID and handler), so one writer writes them in order.
func (r *Recorder) queueOf(e *modelevent.ModelEvent) chan writeRequest {
	if len(r.queues) == 1 {
		return r.queues[0]
	}
	// FNV-1a over the natural key.
	h := uint32(2166136261)
	for i := 0; i < len(e.MessageUUID); i++ {
		h = (h ^ uint32(e.MessageUUID[i])) * 16777619
	}
	for i := 0; i < len(e.Handler); i++ {
		h = (h ^ uint32(e.Handler[i])) * 16777619
	}
	return r.queues[h%uint32(len(r.queues))]
}

// A durable Record waits on a channel and a timer; both are pooled (each was two
// allocations per wait). A channel goes back to the pool only after the writer's one
// send was received; a timer after Stop (since Go 1.23 a stopped timer's channel has
// nothing left to receive, and Reset starts it afresh).
var (
	doneChans = sync.Pool{New: func() any { return make(chan error, 1) }}
	timers    = sync.Pool{}
)

func getDone() chan error { return doneChans.Get().(chan error) }

func putDone(c chan error) { doneChans.Put(c) }

func getTimer(d time.Duration) *time.Timer {
	if t, ok := timers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

func putTimer(t *time.Timer) {
	t.Stop()
	timers.Put(t)
}

// RecordDurably is Record that waits in durable mode and queues in buffered mode.
func (r *Recorder) RecordDurably(ctx context.Context, changes ...modelevent.Change) error {
	return r.Record(ctx, r.cfg.Mode == RecordDurable, changes...)
}

// RecordProduced records produced rows: it waits for them when ProducedMode is durable
// and queues them when it is buffered.
func (r *Recorder) RecordProduced(ctx context.Context, changes ...modelevent.Change) error {
	return r.Record(ctx, r.cfg.ProducedMode == RecordDurable, changes...)
}

// Close stops taking changes, writes every queued one and returns. ctx bounds the
// flush: when it ends first, the writer stops retrying, the rows not yet stored are
// dropped (and logged), and the error counts them. When the writers finish with none
// dropped (the last write was taken after all), Close returns nil, even if ctx ended
// first. Close returns by ctx's deadline (and a second) even when the store does not
// answer.
func (r *Recorder) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		// Callers blocked on a full queue hold mu's read lock until there is room or
		// their WriteTimeout passes. Close does not wait for them past ctx: the lock is
		// taken on a goroutine, and once ctx ends abortNow makes the writer drop rows
		// fast and the blocked callers give up, which releases it.
		go func() {
			r.mu.Lock()
			r.closed = true
			r.mu.Unlock()
			close(r.closing)
		}()
	})
	select {
	case <-r.stopped:
		if n := r.lost.Load(); n > 0 {
			return fmt.Errorf("eventbus: recorder close: %d changes not stored", n)
		}
		return nil
	case <-ctx.Done():
	}
	r.abortNow()
	select {
	case <-r.stopped:
		if r.lost.Load() == 0 {
			return nil // the writers stopped with every change stored
		}
	case <-time.After(time.Second):
		// A store call that ignores its cancelled context: return anyway.
	}
	return fmt.Errorf("eventbus: recorder close: %d changes not stored: %w", r.lost.Load()+int64(r.queuedChanges()), ctx.Err())
}

// QueuedChanges returns how many changes were handed to Record and are not written yet:
// waiting in the queue or in the batch being written (the recorder's lag, in rows).
// It is one atomic load.
func (r *Recorder) QueuedChanges() int64 { return max(r.queued.Load(), 0) }

// QueueCapacity returns the bound of the queues, in Record calls (about QueueSize).
func (r *Recorder) QueueCapacity() int { return cap(r.queues[0]) * len(r.queues) }

// queuedChanges counts the changes left in the queues (after the writers stopped).
func (r *Recorder) queuedChanges() int {
	n := 0
	for _, q := range r.queues {
	drain:
		for {
			select {
			case req := <-q:
				n += len(req.changes)
			default:
				break drain
			}
		}
	}
	return n
}

// Healthy reports whether the store took the latest write; false while the writer
// retries a store that fails.
func (r *Recorder) Healthy() bool { return !r.outage.down.Load() }

// WaitHealthy returns nil at once while the store is healthy. While it is not, it waits
// until the store takes writes again, ctx ends or WriteTimeout passes, and then returns
// an error wrapping ErrNotRecorded: a consumer does not run handlers whose outcome
// could not be recorded, and its message is nacked after a wait instead of at once.
func (r *Recorder) WaitHealthy(ctx context.Context) error {
	if !r.outage.down.Load() {
		return nil // inlined: the wait's frame is not on the stack of every handler
	}
	return r.waitHealthy(ctx)
}

// waitHealthy is WaitHealthy's wait for a store that is down, never inlined: its frame
// (a timer and a select) stays off the stack of every handler that finds the store up.
//
//go:noinline
func (r *Recorder) waitHealthy(ctx context.Context) error {
	up := r.outage.upChan()
	if up == nil {
		return nil
	}
	t := time.NewTimer(r.cfg.WriteTimeout)
	defer t.Stop()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: store unavailable: %w", ErrNotRecorded, ctx.Err())
	case <-t.C:
		return fmt.Errorf("%w: store unavailable for over %v", ErrNotRecorded, r.cfg.WriteTimeout)
	case <-r.abort.Done():
		return fmt.Errorf("%w: store unavailable, recorder closed", ErrNotRecorded)
	}
}

// run is one writer: it writes the batches of queue until the recorder closes.
func (r *Recorder) run(queue chan writeRequest) {
	var (
		batch   []writeRequest
		changes []modelevent.Change
		waited  int       // callers that waited for the last durable commit
		wrote   time.Time // when it ended
		// lingerTimer times collect's waits: one per writer, not one per batch (since
		// Go 1.23 a stopped timer has nothing left to receive and Reset starts it afresh).
		lingerTimer = time.NewTimer(time.Hour)
		w           = &writeContext{parent: r.abort, timeout: r.cfg.WriteTimeout}
	)
	lingerTimer.Stop()
	for {
		var first writeRequest
		select {
		case first = <-queue:
		case <-r.closing:
			// Drain what is left, then stop.
			for {
				select {
				case first = <-queue:
				default:
					return
				}
				batch, changes = r.collect(queue, first, batch[:0], changes[:0], nil, 0, 0)
				r.write(w, batch, changes)
			}
		}
		if r.abort.Err() != nil {
			batch, changes = r.collect(queue, first, batch[:0], changes[:0], nil, 0, 0)
			r.write(w, batch, changes)
			continue
		}
		linger, want := r.cfg.FlushInterval, 0
		if r.cfg.Mode == RecordDurable {
			linger = r.cfg.CommitDelay
			if linger == 0 && waited > 1 && time.Since(wrote) < regroupWait {
				// Adaptive group commit: under steady load the callers the last commit
				// woke are about to queue their next rows; wait (briefly) until as many
				// are back, or each would join only every other commit.
				linger, want = regroupWait, waited
			}
		}
		batch, changes = r.collect(queue, first, batch[:0], changes[:0], lingerTimer, linger, want)
		waited = 0
		for _, req := range batch {
			if req.done != nil {
				waited++
			}
		}
		r.write(w, batch, changes)
		wrote = time.Now()
	}
}

// regroupWait bounds how long a durable commit waits for the callers of the previous
// one to come back (adaptive group commit).
const regroupWait = 200 * time.Microsecond

// collect gathers requests after first until the batch is full. It waits up to linger
// for more (buffered mode: FlushInterval; durable mode: CommitDelay, or regroupWait
// until want requests are in), or, with no linger, takes what is already queued (group
// commit: whatever arrived during the previous write). t times the linger (stopped
// when collect returns); it may be nil when linger is 0.
func (r *Recorder) collect(queue chan writeRequest, first writeRequest, batch []writeRequest, changes []modelevent.Change, t *time.Timer, linger time.Duration, want int) ([]writeRequest, []modelevent.Change) {
	batch = append(batch, first)
	changes = append(changes, first.changes...)
	if want > 0 {
		// Take what is queued; wait only while fewer than want requests are in.
		for len(changes) < r.cfg.BatchSize {
			select {
			case req := <-queue:
				batch = append(batch, req)
				changes = append(changes, req.changes...)
				continue
			default:
			}
			break
		}
		if len(batch) >= want {
			return batch, changes
		}
	}
	var timer <-chan time.Time
	if linger > 0 {
		t.Reset(linger)
		defer t.Stop()
		timer = t.C
	}
	for len(changes) < r.cfg.BatchSize {
		if timer != nil {
			select {
			case req := <-queue:
				batch = append(batch, req)
				changes = append(changes, req.changes...)
				if want > 0 && len(batch) >= want {
					return batch, changes
				}
			case <-timer:
				return batch, changes
			case <-r.closing:
				timer = nil
			}
			continue
		}
		select {
		case req := <-queue:
			batch = append(batch, req)
			changes = append(changes, req.changes...)
		default:
			return batch, changes
		}
	}
	return batch, changes
}

func (r *Recorder) write(w *writeContext, batch []writeRequest, changes []modelevent.Change) {
	err := r.writeWithRetry(w, changes)
	r.queued.Add(-int64(len(changes)))
	var rejected *modelevent.RejectedError
	if err != nil && !errors.As(err, &rejected) {
		err = fmt.Errorf("%w: %w", ErrNotRecorded, err)
		if r.abort.Err() != nil {
			r.lost.Add(int64(len(changes)))
			r.cfg.Logger.Error("eventbus: rows dropped: the store did not take them before the close deadline",
				"changes", len(changes), "first_message_uuid", changes[0].Event.MessageUUID, "error", err)
		}
	}
	offset := 0
	for _, req := range batch {
		reqErr := err
		if rejected != nil {
			reqErr = nil
			for i := range req.changes {
				if why := rejected.Changes[offset+i]; why != nil {
					reqErr = fmt.Errorf("%w: %w", ErrUnrecordable, why)
					r.cfg.Logger.Warn("eventbus: the store refused a row", "message_uuid", req.changes[i].Event.MessageUUID,
						"handler", req.changes[i].Event.Handler, "topic", req.changes[i].Event.Topic, "reason", why)
					break
				}
			}
		}
		offset += len(req.changes)
		if req.done != nil {
			req.done <- reqErr
		}
	}
	if err != nil && rejected == nil {
		return
	}
	r.listenersMu.RLock()
	listeners := r.listeners
	r.listenersMu.RUnlock()
	if len(listeners) == 0 {
		return
	}
	if len(r.queues) > 1 {
		r.notifyMu.Lock()
		defer r.notifyMu.Unlock()
	}
	ctx := context.Background()
	for i, c := range changes {
		if rejected != nil && rejected.Changes[i] != nil {
			continue
		}
		for _, l := range listeners {
			l(ctx, c)
		}
	}
}

// Backoff bounds of the writer's retries while the store fails.
const (
	minBackoff = 10 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// writeWithRetry writes changes, retrying with exponential backoff while the store
// fails (each try bounded by WriteTimeout), until it takes them, refuses some for their
// data, or Close's deadline aborts the writer. An outage is logged when it starts and
// when it ends, with its duration.
func (r *Recorder) writeWithRetry(w *writeContext, changes []modelevent.Change) error {
	delay := minBackoff
	for try := 1; ; try++ {
		ctx := w.start()
		var start time.Time
		if r.cfg.Observer != nil {
			start = time.Now()
		}
		err := r.store.Write(ctx, changes)
		if !w.stop() && err != nil {
			err = fmt.Errorf("store write took over %v: %w", r.cfg.WriteTimeout, err)
		}
		if r.cfg.Observer != nil {
			r.cfg.Observer.StoreWritten(len(changes), time.Since(start), err)
		}
		if err == nil || errors.Is(err, modelevent.ErrRejected) {
			r.outage.end(r.cfg.Logger)
			return err
		}
		if r.abort.Err() != nil {
			return err
		}
		r.outage.begin(r.cfg.Logger, err)
		r.cfg.Logger.Debug("eventbus: store write failed, retrying", "changes", len(changes), "try", try, "delay", delay, "error", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.abort.Done():
			t.Stop()
			return err
		}
		delay = min(delay*2, maxBackoff)
	}
}

// writeContext is a writer's context for its store writes, each bounded by WriteTimeout
// and by Close's deadline (abort). It is one context and one timer for many writes:
// context.WithTimeout per write was a context, a timer and a registration with abort
// (three to four allocations) per commit, about one per event in durable mode's small
// commits. The context has no deadline: the timer cancels it (with cause
// errWriteTimeout) when a write outlasts WriteTimeout, and the next write gets a new
// one. Only its writer goroutine uses it.
type writeContext struct {
	parent  context.Context
	timeout time.Duration
	ctx     context.Context
	timer   *time.Timer // cancels ctx after timeout; stopped between writes
}

// errWriteTimeout is the cause of a write context the timer cancelled.
var errWriteTimeout = errors.New("store write timeout")

// start returns the context of the next write and starts its timeout.
func (w *writeContext) start() context.Context {
	if w.ctx == nil || w.ctx.Err() != nil {
		ctx, cancel := context.WithCancelCause(w.parent)
		w.ctx = ctx
		w.timer = time.AfterFunc(w.timeout, func() { cancel(errWriteTimeout) })
		return ctx
	}
	w.timer.Reset(w.timeout)
	return w.ctx
}

// stop ends the timeout of the write that start began; it reports false when the
// timeout had fired (the context is cancelled or about to be: the next write gets a
// new one).
func (w *writeContext) stop() bool {
	if w.timer.Stop() {
		return true
	}
	w.ctx = nil
	return false
}

// outage tracks an episode of store failures: when it began, and a channel closed
// when it ends.
type outage struct {
	down  atomic.Bool
	mu    sync.Mutex
	since time.Time
	tries int
	up    chan struct{}
}

func (o *outage) begin(log *slog.Logger, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.tries++
	if o.up != nil {
		return
	}
	o.since = time.Now()
	o.up = make(chan struct{})
	o.down.Store(true)
	log.Warn("eventbus: store unavailable; recording waits and retries with backoff", "error", err)
}

func (o *outage) end(log *slog.Logger) {
	if !o.down.Load() {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.up == nil {
		return
	}
	log.Info("eventbus: store available again", "outage", time.Since(o.since).Round(time.Millisecond), "failed_writes", o.tries)
	close(o.up)
	o.up, o.tries = nil, 0
	o.down.Store(false)
}

// upChan returns the channel closed when the current outage ends; nil when there is none.
func (o *outage) upChan() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.up == nil {
		return nil
	}
	return o.up
}
