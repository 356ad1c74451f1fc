package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/modelevent"
)

// RetentionConfig says how long ModelEvents are kept. Retention is off by default (every
// row is kept): an audit trail that deletes itself must be asked to, and how long is a
// decision of the operator (docs/operations.md). It is on once any age or MaxRows is
// set; then the bus deletes the rows older than their status's age, a batch at a time,
// from one bus process at a time (the one holding the store's retention lease).
// Pending and retrying rows are never deleted by age: they are work in progress.
type RetentionConfig struct {
	// Succeeded is how long succeeded consumed rows are kept; 0 keeps them.
	Succeeded time.Duration `yaml:"succeeded"`
	// Published is how long published produced rows are kept; 0 keeps them.
	Published time.Duration `yaml:"published"`
	// Failed is how long failed rows are kept; 0 keeps them.
	Failed time.Duration `yaml:"failed"`
	// Poisoned is how long poisoned rows are kept; 0 keeps them.
	Poisoned time.Duration `yaml:"poisoned"`
	// PublishFailed is how long publish_failed rows are kept; 0 keeps them.
	PublishFailed time.Duration `yaml:"publish_failed"`
	// Commands is how long finished control-plane commands are kept. Default 7d when
	// retention is on.
	Commands time.Duration `yaml:"commands"`
	// MaxRows caps the rows kept: the oldest beyond it go whatever their age (but
	// pending and retrying rows). 0: no cap.
	MaxRows int64 `yaml:"max_rows"`
	// Interval is how often the pruner runs. Default 1m.
	Interval time.Duration `yaml:"interval"`
	// BatchSize is the number of rows deleted per transaction. Default 500.
	BatchSize int `yaml:"batch_size"`
}

// Defaults of RetentionConfig when retention is on.
const (
	DefaultRetentionInterval = time.Minute
	DefaultRetentionCommands = 7 * 24 * time.Hour
	DefaultRetentionBatch    = 500
)

// The lease of the pruning process lapses after retentionLeaseTTL unless renewed; its
// holder renews it every retentionRenew. Variables for tests.
var (
	retentionLeaseTTL = 30 * time.Second
	retentionRenew    = 10 * time.Second
)

// Enabled reports whether retention is on: an age or MaxRows is set.
func (r RetentionConfig) Enabled() bool {
	return r.Succeeded > 0 || r.Published > 0 || r.Failed > 0 || r.Poisoned > 0 || r.PublishFailed > 0 || r.MaxRows > 0
}

func (r *RetentionConfig) setDefaults() {
	if !r.Enabled() {
		return
	}
	if r.Interval <= 0 {
		r.Interval = DefaultRetentionInterval
	}
	if r.Commands <= 0 {
		r.Commands = DefaultRetentionCommands
	}
	if r.BatchSize <= 0 {
		r.BatchSize = DefaultRetentionBatch
	}
}

func (r RetentionConfig) validate() error {
	if r.MaxRows < 0 {
		return fmt.Errorf("retention.max_rows: must be ≥ 0, got %d", r.MaxRows)
	}
	if r.BatchSize < 0 || r.BatchSize > 10000 {
		return fmt.Errorf("retention.batch_size: must be between 1 and 10000, got %d", r.BatchSize)
	}
	if r.Enabled() && r.Interval > 0 && r.Interval < time.Second {
		return fmt.Errorf("retention.interval: must be at least 1s, got %v", r.Interval)
	}
	return nil
}

// MaxAge returns the ages by status.
func (r RetentionConfig) MaxAge() map[modelevent.Status]time.Duration {
	out := map[modelevent.Status]time.Duration{}
	for st, d := range map[modelevent.Status]time.Duration{
		modelevent.StatusSucceeded: r.Succeeded, modelevent.StatusPublished: r.Published,
		modelevent.StatusFailed: r.Failed, modelevent.StatusPoisoned: r.Poisoned, modelevent.StatusPublishFailed: r.PublishFailed,
	} {
		if d > 0 {
			out[st] = d
		}
	}
	return out
}

// PruneOptions returns the options of one run of the pruner under r.
func (r RetentionConfig) PruneOptions() modelevent.PruneOptions {
	return modelevent.PruneOptions{MaxAge: r.MaxAge(), MaxRows: r.MaxRows, CommandMaxAge: r.Commands, BatchSize: r.BatchSize}
}

// Policy returns r as the control plane reports it.
func (r RetentionConfig) Policy() control.RetentionPolicy {
	return control.RetentionPolicy{MaxAge: r.MaxAge(), MaxRows: r.MaxRows, Commands: r.Commands, Interval: r.Interval}
}

// retentionStore is what the pruner needs of the store.
type retentionStore interface {
	modelevent.Pruner
	modelevent.Leaser
}

// startRetention starts the pruner when retention is on and the store can prune (the
// SQL store, or a store wrapping it). It costs nothing per message: it only touches the store every renewal.
func (b *Bus) startRetention() {
	if !b.cfg.Retention.Enabled() {
		return
	}
	s, ok := b.store.(retentionStore)
	if !ok {
		b.log.Warn("eventbus: retention is configured but the store cannot prune (it is no modelevent.Pruner and Leaser): nothing is pruned")
		return
	}
	ctx, cancel := context.WithCancel(b.runCtx)
	b.retentionCancel, b.retentionDone = cancel, make(chan struct{})
	go b.runRetention(ctx, s)
}

// stopRetention stops the pruner, if running, and gives up its lease.
func (b *Bus) stopRetention() {
	if b.retentionCancel != nil {
		b.retentionCancel()
		<-b.retentionDone
	}
}

// runRetention holds the retention lease when it can and, while it does, prunes every
// Interval. Pruning runs beside the renewals, so a long prune does not let the lease
// lapse; losing the lease cancels it.
func (b *Bus) runRetention(ctx context.Context, s retentionStore) {
	defer close(b.retentionDone)
	cfg := b.cfg.Retention
	report := control.RetentionReport{Policy: cfg.Policy()}
	tick := time.NewTicker(min(retentionRenew, cfg.Interval))
	defer tick.Stop()
	var (
		held        bool
		next        time.Time
		pruneDone   chan pruneOutcome
		cancelPrune context.CancelFunc = func() {}
	)
	for {
		info, _ := json.Marshal(report)
		ok, err := s.AcquireLease(ctx, modelevent.RetentionLease, b.processID, retentionLeaseTTL, string(info))
		if err != nil && ctx.Err() == nil {
			b.log.Warn("eventbus: retention: renew lease", "error", err)
		}
		if ok != held {
			b.log.Info("eventbus: retention: lease", "held", ok, "process", b.processID)
			next = time.Now()
		}
		held = ok
		if !held {
			cancelPrune()
		} else if pruneDone == nil && !time.Now().Before(next) {
			var pctx context.Context
			pctx, cancelPrune = context.WithCancel(ctx)
			pruneDone = make(chan pruneOutcome, 1)
			next = time.Now().Add(cfg.Interval)
			go func(done chan<- pruneOutcome) {
				start := time.Now()
				res, err := s.Prune(pctx, cfg.PruneOptions())
				done <- pruneOutcome{Start: start, Result: res, Err: err}
			}(pruneDone)
		}
		select {
		case <-ctx.Done():
			cancelPrune()
			if pruneDone != nil {
				<-pruneDone
			}
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := s.ReleaseLease(rctx, modelevent.RetentionLease, b.processID); err != nil {
				b.log.Warn("eventbus: retention: release lease", "error", err)
			}
			cancel()
			return
		case <-tick.C:
		case o := <-pruneDone:
			pruneDone = nil
			report.LastRun, report.LastError = o.Start.UTC(), ""
			report.LastResult = &o.Result
			if o.Err != nil && ctx.Err() == nil {
				report.LastError = o.Err.Error()
				b.log.Warn("eventbus: retention: prune", "error", o.Err, "events", o.Result.Events)
			} else {
				b.log.Info("eventbus: retention: pruned", "events", o.Result.Events, "attempts", o.Result.Attempts,
					"commands", o.Result.Commands, "batches", o.Result.Batches, "duration", o.Result.Duration)
			}
		}
	}
}

// pruneOutcome is one run of the bus's pruner.
type pruneOutcome struct {
	Start  time.Time
	Result modelevent.PruneResult
	Err    error
}
