package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-eventbus/eventbus/modelevent"
)

// ErrNoSchedule is returned by the schedule calls of an Inspector whose event store
// keeps no schedule: neither the SQL store nor a store forwarding its
// modelevent.Scheduler methods.
var ErrNoSchedule = errors.New("control: the event store keeps no schedule")

// ScheduledEvent is a schedule entry with the event row it acts on.
type ScheduledEvent struct {
	modelevent.Scheduled
	// Event is the row: the consumed row of a scheduled retry, the produced row (in
	// status scheduled) of a delayed publish. History is not filled.
	Event modelevent.ModelEvent `json:"event"`
}

// scheduleStore is an events store that keeps the schedule: the SQL store, or one
// that wraps it and forwards modelevent.Scheduler.
type scheduleStore interface {
	modelevent.Store
	modelevent.Scheduler
}

func (i *Inspector) schedule() (scheduleStore, error) {
	s, ok := i.events.(scheduleStore)
	if !ok {
		return nil, ErrNoSchedule
	}
	return s, nil
}

// Scheduled lists the schedule's entries of kind (every kind when empty), soonest due
// first, at most limit, each with its row (zero when the row is gone). The rows of the
// entries that name theirs (delayed publishes) are read in one GetMany; a retry's
// entry names none, and its consumed row is found by message and consumer.
func (i *Inspector) Scheduled(ctx context.Context, kind modelevent.ScheduleKind, limit int) ([]ScheduledEvent, error) {
	s, err := i.schedule()
	if err != nil {
		return nil, err
	}
	list, err := s.ListScheduled(ctx, kind, limit)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range list {
		if e.EventID != "" {
			ids = append(ids, e.EventID)
		}
	}
	byID := make(map[string]modelevent.ModelEvent, len(ids))
	if len(ids) > 0 {
		evs, err := s.GetMany(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("control: scheduled: the rows of %d entries: %w", len(ids), err)
		}
		for _, ev := range evs {
			byID[ev.ID] = ev
		}
	}
	out := make([]ScheduledEvent, 0, len(list))
	for _, e := range list {
		se := ScheduledEvent{Scheduled: e}
		if e.EventID != "" {
			se.Event = byID[e.EventID]
			out = append(out, se)
			continue
		}
		page, err := s.List(ctx, modelevent.Filter{MessageUUID: e.MessageUUID, Handler: e.Consumer}, modelevent.ListOptions{Limit: 10})
		if err != nil {
			return nil, err
		}
		for _, ev := range page.Events {
			if ev.Handler == e.Consumer {
				se.Event = ev
			}
		}
		out = append(out, se)
	}
	return out, nil
}

// scheduledOf returns the schedule key of event id: its message and, for a consumed
// row, its consumer.
func (i *Inspector) scheduledOf(ctx context.Context, id string) (scheduleStore, string, string, error) {
	s, err := i.schedule()
	if err != nil {
		return nil, "", "", err
	}
	ev, err := s.Get(ctx, id)
	if err != nil {
		return nil, "", "", err
	}
	return s, ev.MessageUUID, ev.Handler, nil
}

// RetryNow makes the scheduled retry of consumed event id due now.
func (i *Inspector) RetryNow(ctx context.Context, id string) error {
	return i.RescheduleScheduled(ctx, id, time.Now())
}

// RescheduleScheduled makes the schedule entry of event id (a scheduled retry or a
// delayed publish) due at at. It fails with an error wrapping
// modelevent.ErrNotScheduled when the event has none, or a process is running it now.
func (i *Inspector) RescheduleScheduled(ctx context.Context, id string, at time.Time) error {
	s, uuid, consumer, err := i.scheduledOf(ctx, id)
	if err != nil {
		return fmt.Errorf("control: reschedule %s: %w", id, err)
	}
	if err := s.Reschedule(ctx, uuid, consumer, at); err != nil {
		return fmt.Errorf("control: reschedule %s: %w", id, err)
	}
	return nil
}

// CancelScheduled cancels the schedule entry of event id: a delayed publish ends
// cancelled (nothing is sent), a scheduled retry failed.
func (i *Inspector) CancelScheduled(ctx context.Context, id string) error {
	s, uuid, consumer, err := i.scheduledOf(ctx, id)
	if err != nil {
		return fmt.Errorf("control: cancel %s: %w", id, err)
	}
	if err := s.CancelScheduled(ctx, uuid, consumer); err != nil {
		return fmt.Errorf("control: cancel %s: %w", id, err)
	}
	return nil
}
