package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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
	// Backend is the broker name stored in every row, e.g. "memory".
	Backend string
	// Logger receives write errors; nil discards them.
	Logger *slog.Logger
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
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports a configuration error, naming the field.
func (c RecorderConfig) Validate() error {
	if c.Mode != "" && c.Mode != RecordDurable && c.Mode != RecordBuffered {
		return fmt.Errorf("record.mode: %q is not a record mode (accepted: durable, buffered)", c.Mode)
	}
	return nil
}

// Listener is called after changes are stored, in the order they were stored, from the
// Recorder's writer goroutine: it must return quickly (hand slow work to a goroutine).
type Listener func(ctx context.Context, c modelevent.Change)

type writeRequest struct {
	changes []modelevent.Change
	done    chan error // nil: nobody waits
}

// Recorder writes ModelEvent changes to a Store in batches from one writer goroutine.
// Record is safe for concurrent use; concurrent callers share one store transaction
// (group commit).
type Recorder struct {
	store modelevent.Store
	cfg   RecorderConfig

	queue   chan writeRequest
	closing chan struct{}
	stopped chan struct{}

	closeOnce sync.Once
	mu        sync.RWMutex // guards closed against sends on queue
	closed    bool

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
	cfg.setDefaults()
	r := &Recorder{
		store:   store,
		cfg:     cfg,
		queue:   make(chan writeRequest, cfg.QueueSize),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go r.run()
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
// room or ctx is done.
func (r *Recorder) Record(ctx context.Context, wait bool, changes ...modelevent.Change) error {
	if len(changes) == 0 {
		return nil
	}
	req := writeRequest{changes: changes}
	if wait {
		req.done = make(chan error, 1)
	}
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return ErrRecorderClosed
	}
	select {
	case r.queue <- req:
	case <-ctx.Done():
		r.mu.RUnlock()
		return fmt.Errorf("%w: queue full: %w", ErrNotRecorded, ctx.Err())
	}
	r.mu.RUnlock()
	if !wait {
		return nil
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNotRecorded, ctx.Err())
	}
}

// RecordDurably is Record that waits in durable mode and queues in buffered mode.
func (r *Recorder) RecordDurably(ctx context.Context, changes ...modelevent.Change) error {
	return r.Record(ctx, r.cfg.Mode == RecordDurable, changes...)
}

// Close stops taking changes, writes every queued one and returns. ctx bounds the
// flush; rows still unwritten when it ends are reported in the error.
func (r *Recorder) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		close(r.closing)
	})
	select {
	case <-r.stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("eventbus: recorder close: %d queued writes not flushed: %w", len(r.queue), ctx.Err())
	}
}

func (r *Recorder) run() {
	defer close(r.stopped)
	var (
		batch   []writeRequest
		changes []modelevent.Change
	)
	for {
		var first writeRequest
		select {
		case first = <-r.queue:
		case <-r.closing:
			// Drain what is left, then stop.
			for {
				select {
				case first = <-r.queue:
				default:
					return
				}
				batch, changes = r.collect(first, batch[:0], changes[:0], 0)
				r.write(batch, changes)
			}
		}
		linger := r.cfg.FlushInterval
		if r.cfg.Mode == RecordDurable {
			linger = r.cfg.CommitDelay
		}
		batch, changes = r.collect(first, batch[:0], changes[:0], linger)
		r.write(batch, changes)
	}
}

// collect gathers requests after first until the batch is full. It waits up to linger
// for more (buffered mode: FlushInterval; durable mode: CommitDelay), or, with no
// linger, takes what is already queued (group commit: whatever arrived during the
// previous write).
func (r *Recorder) collect(first writeRequest, batch []writeRequest, changes []modelevent.Change, linger time.Duration) ([]writeRequest, []modelevent.Change) {
	batch = append(batch, first)
	changes = append(changes, first.changes...)
	var timer <-chan time.Time
	if linger > 0 {
		t := time.NewTimer(linger)
		defer t.Stop()
		timer = t.C
	}
	for len(changes) < r.cfg.BatchSize {
		if timer != nil {
			select {
			case req := <-r.queue:
				batch = append(batch, req)
				changes = append(changes, req.changes...)
			case <-timer:
				return batch, changes
			case <-r.closing:
				timer = nil
			}
			continue
		}
		select {
		case req := <-r.queue:
			batch = append(batch, req)
			changes = append(changes, req.changes...)
		default:
			return batch, changes
		}
	}
	return batch, changes
}

func (r *Recorder) write(batch []writeRequest, changes []modelevent.Change) {
	err := r.writeWithRetry(changes, r.cfg.Mode == RecordBuffered)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrNotRecorded, err)
		r.cfg.Logger.Error("eventbus: recording failed", "changes", len(changes), "error", err)
	}
	for _, req := range batch {
		if req.done != nil {
			req.done <- err
		}
	}
	if err != nil {
		return
	}
	r.listenersMu.RLock()
	listeners := r.listeners
	r.listenersMu.RUnlock()
	if len(listeners) == 0 {
		return
	}
	ctx := context.Background()
	for _, c := range changes {
		for _, l := range listeners {
			l(ctx, c)
		}
	}
}

// writeWithRetry writes changes, retrying transient failures. Durable mode gives up after
// a few tries (the waiting handlers nack and the broker redelivers); buffered mode, where
// nobody waits, keeps trying until the recorder is closing and the store still fails.
func (r *Recorder) writeWithRetry(changes []modelevent.Change, persistent bool) error {
	delay := 10 * time.Millisecond
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := r.store.Write(ctx, changes)
		cancel()
		if err == nil {
			return nil
		}
		closing := false
		select {
		case <-r.closing:
			closing = true
		default:
		}
		if (!persistent && try >= 3) || (persistent && closing && try >= 3) {
			return err
		}
		r.cfg.Logger.Warn("eventbus: store write failed, retrying", "changes", len(changes), "try", try, "error", err)
		time.Sleep(delay)
		delay = min(delay*2, 5*time.Second)
	}
}
