package bus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/go-eventbus/eventbus/control"
	"github.com/go-eventbus/eventbus/middleware"
	"github.com/go-eventbus/eventbus/modelevent"
)

// SchedulerConfig configures the bus's scheduler: the loop of every bus process that
// claims the store's due work — scheduled retries of the consumers it runs, and delayed
// publishes (PublishAt) — and runs it. It runs when the store is the SQL store.
type SchedulerConfig struct {
	// PollInterval is how often the scheduler looks for due work when it found none
	// the last time; after a full batch it looks again at once. Each look is one
	// indexed query. Default 200ms.
	PollInterval time.Duration `yaml:"poll_interval"`
	// ClaimTimeout is how long a claimed entry belongs to the process that claimed it:
	// if that process dies mid-attempt, another process runs the entry once the claim
	// lapses. It must exceed the longest handler run (handler_timeout, when set, plus
	// the recording). Default 1m, at least twice handler_timeout.
	ClaimTimeout time.Duration `yaml:"claim_timeout"`
	// BatchSize caps the delayed publishes claimed by one look, which one worker runs as
	// one batch (one broker call and one commit per topic); retries are claimed only up
	// to the workers free besides it. Default 256.
	BatchSize int `yaml:"batch_size"`
	// Workers caps the entries run at the same time. Default 16.
	Workers int `yaml:"workers"`
}

// IdempotencyConfig is the bus-wide default of idempotent consumers (each consumer can
// choose with ConsumerOptions.Idempotent). See docs/retries.md for what is guaranteed.
type IdempotencyConfig struct {
	// Enabled makes every consumer idempotent: a delivery of a message whose row for
	// the consumer already succeeded is acked without running the handler and counted
	// on the row (duplicates). Default false: every delivery runs the handler, as
	// Watermill does (at least once), and costs no look-up.
	Enabled bool `yaml:"enabled"`
	// ClaimTTL is how long the claim taken before a run holds (see
	// middleware.IdempotencyConfig.ClaimTTL). Default 1m.
	ClaimTTL time.Duration `yaml:"claim_ttl"`
}

func (c *SchedulerConfig) setDefaults(handlerTimeout time.Duration) {
	if c.PollInterval <= 0 {
		c.PollInterval = 200 * time.Millisecond
	}
	if c.ClaimTimeout <= 0 {
		c.ClaimTimeout = max(time.Minute, 2*handlerTimeout)
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.Workers <= 0 {
		c.Workers = 16
	}
}

// ErrNoSchedule is returned by PublishAt, and for scheduled retries or idempotent
// consumers, when the bus's store keeps no schedule and claims: a custom
// Config.EventStore that is neither the SQL store nor wraps it, forwarding
// modelevent.Scheduler, RunClaimer, SQLDatabase and TxWriter (embedding the
// *modelevent.SQLStore does).
var ErrNoSchedule = errors.New("eventbus: the store keeps no schedule (scheduled retries, delayed publishing and idempotency need the SQL store)")

// scheduleStore is what scheduled retries, delayed publishing and idempotent consumers
// need of the bus's store: the SQL store, or a store that wraps it and forwards these
// capabilities (modelevent.Scheduler, RunClaimer, SQLDatabase and TxWriter).
type scheduleStore interface {
	modelevent.Store
	modelevent.Scheduler
	modelevent.RunClaimer
	modelevent.SQLDatabase
	modelevent.TxWriter
}

// sqlStore returns the bus's store when it keeps a schedule and claims.
func (b *Bus) sqlStore() (scheduleStore, bool) {
	s, ok := b.store.(scheduleStore)
	return s, ok
}

// PublishAt records each message as a produced ModelEvent in status scheduled and keeps
// it in the store until at, when a live bus process (this one or any other on the same
// store, on any backend) publishes it to topic and marks its row published. The rows
// and their schedule entries are stored in one transaction before PublishAt returns.
// A due message is published by one process; a process that dies between the publish
// and the row's update leaves it to be published again (same UUID) when its claim
// lapses (SchedulerConfig.ClaimTimeout), so consumers see it at least once — exactly
// once with idempotent consumers. A message is never published before at (by the
// clock of the process that publishes it). Cancel or reschedule it through the
// Inspector, the console or `eventbus scheduled`. It returns the produced rows' ids.
func (b *Bus) PublishAt(ctx context.Context, at time.Time, topic string, msgs ...*message.Message) ([]string, error) {
	if topic == "" {
		return nil, errors.New("eventbus: publish at: empty topic")
	}
	if b.isClosed() {
		return nil, fmt.Errorf("eventbus: publish %q at %v: %w", topic, at, ErrClosed)
	}
	s, ok := b.sqlStore()
	if !ok {
		return nil, fmt.Errorf("eventbus: publish %q at %v: %w", topic, at, ErrNoSchedule)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("eventbus: publish %q at %v: nothing scheduled: %w", topic, at, err)
	}
	if err := b.prepare(ctx, msgs); err != nil {
		return nil, fmt.Errorf("eventbus: publish %q at %v: %w", topic, at, err)
	}
	now := time.Now()
	changes := make([]modelevent.Change, len(msgs))
	for i, m := range msgs {
		c := b.rec.ProducedChange(topic, m, now, nil)
		c.Event.Status, c.Event.Attempts, c.NewAttempts = modelevent.StatusScheduled, 0, nil
		changes[i] = c
	}
	err := inTx(ctx, s.DB(), func(tx *sql.Tx) error {
		if err := s.WriteTx(ctx, tx, changes); err != nil {
			return err
		}
		for i, m := range msgs {
			if err := s.ScheduleTx(ctx, tx, modelevent.Scheduled{MessageUUID: m.UUID, Kind: modelevent.SchedulePublish,
				EventID: changes[i].Event.ID, Topic: topic, NextAttemptAt: at}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("eventbus: publish %q at %v: %w", topic, at, err)
	}
	ids := make([]string, len(changes))
	for i := range changes {
		ids[i] = changes[i].Event.ID // a stored row keeps its id
	}
	b.wakeScheduler(at)
	return ids, nil
}

// PublishIn is PublishAt(ctx, time.Now().Add(d), topic, msgs...).
func (b *Bus) PublishIn(ctx context.Context, d time.Duration, topic string, msgs ...*message.Message) ([]string, error) {
	return b.PublishAt(ctx, time.Now().Add(d), topic, msgs...)
}

func inTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// scheduler is the part of a Bus that runs the store's due work.
type scheduler struct {
	wake chan struct{}
	done chan struct{}
}

// wakeScheduler makes a sleeping scheduler look at once when at is before its next
// look (a PublishAt due now, in this process).
func (b *Bus) wakeScheduler(at time.Time) {
	if b.sched.wake == nil || time.Until(at) > b.cfg.Scheduler.PollInterval {
		return
	}
	select {
	case b.sched.wake <- struct{}{}:
	default:
	}
}

// startScheduler starts the scheduler loop when the store is the SQL store.
func (b *Bus) startScheduler(ctx context.Context) {
	s, ok := b.sqlStore()
	if !ok {
		return
	}
	b.sched.wake = make(chan struct{}, 1)
	b.sched.done = make(chan struct{})
	go b.runScheduler(ctx, s)
}

// stopScheduler waits for the scheduler loop, which ends with ctx (b.stopping), and the
// entries it runs, until deadline: an entry still running then is left to its claim
// (it lapses, and a live process runs the entry again).
func (b *Bus) stopScheduler(deadline time.Time) {
	if b.sched.done == nil {
		return
	}
	select {
	case <-b.sched.done:
	case <-time.After(time.Until(deadline)):
		b.log.Warn("eventbus: scheduler: entries still running at the shutdown deadline; their claims will lapse")
	}
}

func (b *Bus) runScheduler(ctx context.Context, s scheduleStore) {
	defer close(b.sched.done)
	cfg := b.cfg.Scheduler
	var running sync.WaitGroup
	defer running.Wait()
	var inUse atomic.Int64
	freed := make(chan struct{}, 1)
	timer := time.NewTimer(0)
	defer timer.Stop()
	lastPrune := time.Now()
	var failing bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-b.sched.wake:
		case <-freed:
		}
		// Only as many entries are claimed as workers are free, so that each starts
		// at once: an entry claimed and left waiting could see its claim lapse and
		// another process run it too.
		free := cfg.Workers - int(inUse.Load())
		if free <= 0 {
			continue // a worker that ends sends on freed
		}
		// Delayed publishes are run in batches (one broker call and one commit per
		// topic), one worker each; a retry takes a worker of its own.
		due, contended, err := s.ClaimDue(ctx, b.processID, b.runningConsumers(), cfg.BatchSize, free-1, cfg.ClaimTimeout)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			b.log.Warn("eventbus: scheduler: claim due work", "error", err)
			failing = true
		case err == nil && failing:
			b.log.Info("eventbus: scheduler: store reachable again")
			failing = false
		}
		var publishes []modelevent.Scheduled
		work := make([]func(), 0, len(due))
		for _, e := range due {
			switch e.Kind {
			case modelevent.SchedulePublish:
				publishes = append(publishes, e)
			case modelevent.ScheduleRetry:
				work = append(work, func() { b.runScheduledRetry(context.WithoutCancel(ctx), s, e) })
			default:
				b.log.Warn("eventbus: scheduler: unknown kind of entry", "kind", e.Kind, "message_uuid", e.MessageUUID)
			}
		}
		if len(publishes) > 0 {
			work = append(work, func() { b.runScheduledPublishes(context.WithoutCancel(ctx), s, publishes) })
		}
		for _, w := range work {
			inUse.Add(1)
			running.Add(1)
			go func() {
				defer func() {
					inUse.Add(-1)
					running.Done()
					select {
					case freed <- struct{}{}:
					default:
					}
				}()
				w()
			}()
		}
		if time.Since(lastPrune) > time.Minute {
			lastPrune = time.Now()
			if _, err := s.PruneClaims(ctx, time.Minute, 1000); err != nil && ctx.Err() == nil {
				b.log.Debug("eventbus: scheduler: prune claims", "error", err)
			}
		}
		next := cfg.PollInterval
		if contended || len(publishes) == cfg.BatchSize {
			next = 0 // more is due now
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// runningConsumers lists the consumers that run in this process now: only their due
// retries are claimed (a stopped consumer's retries wait for it).
func (b *Bus) runningConsumers() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := make([]string, 0, len(b.order))
	for _, name := range b.order {
		if c := b.consumers[name]; c.state == control.Running && c.wantRunning {
			names = append(names, name)
		}
	}
	return names
}

// runScheduledPublishes publishes due scheduled produced rows: per topic one broker
// call and one commit of the rows (published), then one delete of their entries.
func (b *Bus) runScheduledPublishes(ctx context.Context, s scheduleStore, entries []modelevent.Scheduled) {
	ids := make([]string, len(entries))
	byID := make(map[string]modelevent.Scheduled, len(entries))
	for i, e := range entries {
		ids[i], byID[e.EventID] = e.EventID, e
	}
	evs, err := s.GetMany(ctx, ids)
	if err != nil {
		for _, e := range entries {
			b.requeue(ctx, s, e, time.Now().Add(b.cfg.Scheduler.PollInterval), e.Attempts, err)
		}
		return
	}
	var done [][2]string
	found := make(map[string]bool, len(evs))
	byTopic := map[string][]modelevent.ModelEvent{}
	var topics []string
	for _, ev := range evs {
		found[ev.ID] = true
		if ev.Status != modelevent.StatusScheduled { // cancelled, or published already
			done = append(done, [2]string{ev.MessageUUID, ""})
			continue
		}
		if byTopic[ev.Topic] == nil {
			topics = append(topics, ev.Topic)
		}
		byTopic[ev.Topic] = append(byTopic[ev.Topic], ev)
	}
	for _, e := range entries {
		if !found[e.EventID] { // pruned
			done = append(done, [2]string{e.MessageUUID, ""})
		}
	}
	holder := entries[0].ClaimedBy
	for _, topic := range topics {
		list := byTopic[topic]
		msgs := make([]*message.Message, len(list))
		for i, ev := range list {
			msgs[i] = message.NewMessage(ev.MessageUUID, ev.Payload)
			maps.Copy(msgs[i].Metadata, ev.Metadata)
		}
		_, err := b.publish(ctx, topic, msgs...)
		for _, ev := range list {
			e := byID[ev.ID]
			if err != nil {
				if made := e.Attempts + 1; made <= b.cfg.Retry.MaxRetries {
					b.log.Warn("eventbus: scheduled publish failed; trying again", "event_id", ev.ID, "topic", topic, "attempts", made, "error", err)
					b.requeue(ctx, s, e, time.Now().Add(b.cfg.Retry.Backoff(made)), made, err)
					continue
				}
				b.log.Error("eventbus: scheduled publish failed", "event_id", ev.ID, "topic", topic, "attempts", e.Attempts+1, "error", err)
			}
			done = append(done, [2]string{ev.MessageUUID, ""})
		}
	}
	if err := s.UnscheduleMany(ctx, done, holder); err != nil {
		b.log.Warn("eventbus: scheduled publish: remove from schedule", "entries", len(done), "error", err)
	}
}

func (b *Bus) requeue(ctx context.Context, s scheduleStore, e modelevent.Scheduled, next time.Time, attempts int, cause error) {
	text := ""
	if cause != nil {
		text = cause.Error()
	}
	if err := s.Requeue(ctx, e.MessageUUID, e.Consumer, e.ClaimedBy, next, attempts, text); err != nil {
		b.log.Warn("eventbus: scheduler: give back entry", "message_uuid", e.MessageUUID, "consumer", e.Consumer, "error", err)
	}
}

// errNotRunning ends a scheduled retry claimed for a consumer that stopped meanwhile.
var errNotRunning = errors.New("eventbus: consumer not running")

// runScheduledRetry runs a due scheduled retry: the consumer's handler on the stored
// payload and metadata, recorded on the consumed row; then it removes the entry
// (success), schedules the next retry, or poisons the message past the retry limit.
func (b *Bus) runScheduledRetry(ctx context.Context, s scheduleStore, e modelevent.Scheduled) {
	c, err := b.lookupConsumer(e.Consumer)
	if err == nil && !b.isRunning(c) {
		err = errNotRunning
	}
	if err != nil {
		b.requeue(ctx, s, e, time.Now().Add(b.cfg.Scheduler.PollInterval), e.Attempts, errors.New(e.LastError))
		return
	}
	page, err := s.List(ctx, modelevent.Filter{MessageUUID: e.MessageUUID, Handler: e.Consumer, Direction: modelevent.Consumed}, modelevent.ListOptions{Limit: 1})
	if err != nil {
		b.requeue(ctx, s, e, time.Now().Add(b.cfg.Scheduler.PollInterval), e.Attempts, errors.New(e.LastError))
		return
	}
	if len(page.Events) == 0 {
		b.log.Warn("eventbus: scheduled retry of a message without its row; dropped", "message_uuid", e.MessageUUID, "handler", e.Consumer)
		_ = s.Unschedule(ctx, e.MessageUUID, e.Consumer, e.ClaimedBy)
		return
	}
	ev := page.Events[0]
	if ev.Status != modelevent.StatusRetrying {
		// Succeeded meanwhile (a redelivery), or cancelled by an operator.
		_ = s.Unschedule(ctx, e.MessageUUID, e.Consumer, e.ClaimedBy)
		return
	}
	msg := message.NewMessage(ev.MessageUUID, ev.Payload)
	maps.Copy(msg.Metadata, ev.Metadata)
	made := e.Attempts + 1
	// Below the limit, a failure is recorded retrying by the run's own write.
	plan := middleware.NewRetryPlan(middleware.ContextWithConsumer(ctx, c.name, c.topic), 1, made <= c.retry.MaxRetries)
	msg.SetContext(plan)
	c.inFlight.Add(1)
	_, err = c.scheduledHandle(msg)
	c.inFlight.Add(-1)
	switch {
	case err == nil:
		c.processed.Add(1)
		if uerr := s.Unschedule(ctx, e.MessageUUID, e.Consumer, e.ClaimedBy); uerr != nil {
			b.log.Warn("eventbus: scheduled retry succeeded, but its entry stays", "message_uuid", e.MessageUUID, "handler", c.name, "error", uerr)
		}
	case !middleware.Schedulable(err) && !middleware.IsPermanent(err):
		// Not recorded, or abandoned: the attempt does not count; try again soon.
		b.requeue(ctx, s, e, time.Now().Add(b.cfg.Scheduler.PollInterval), e.Attempts, err)
	case !middleware.IsPermanent(err) && made <= c.retry.MaxRetries:
		next := time.Now().Add(c.retry.Backoff(made))
		if !plan.Recorded() {
			ch := modelevent.Change{Event: ev}
			ch.Event.Status, ch.Event.Attempts, ch.Event.LastError, ch.Event.UpdatedAt = modelevent.StatusRetrying, 0, err.Error(), time.Now()
			if rerr := b.rec.RecordDurably(ctx, ch); rerr != nil {
				b.log.Warn("eventbus: scheduled retry: record retrying", "message_uuid", e.MessageUUID, "handler", c.name, "error", rerr)
			}
		}
		b.requeue(ctx, s, e, next, made, err)
		if b.metrics != nil {
			b.metrics.Retrying(c.name, c.topic)
		}
	default:
		if perr := b.rec.Poison(b.chain.PoisonPublisher, b.cfg.PoisonTopic, msg, err); perr != nil {
			b.log.Error("eventbus: scheduled retry: poison", "message_uuid", e.MessageUUID, "handler", c.name, "error", perr)
			b.requeue(ctx, s, e, time.Now().Add(b.cfg.Retry.Backoff(1)), e.Attempts, err)
			return
		}
		c.processed.Add(1)
		if uerr := s.Unschedule(ctx, e.MessageUUID, e.Consumer, e.ClaimedBy); uerr != nil {
			b.log.Warn("eventbus: scheduled retry poisoned, but its entry stays", "message_uuid", e.MessageUUID, "handler", c.name, "error", uerr)
		}
	}
}

func (b *Bus) isRunning(c *consumer) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return c.state == control.Running && c.wantRunning && !b.closed
}
