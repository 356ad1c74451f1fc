package control

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-eventbus/eventbus/modelevent"
)

// Live is a bus running in this process (Bus.Inspector passes its own). With one, the
// Inspector acts directly where that bus can, instead of through commands.
type Live interface {
	// ProcessID is the process's id in the registry.
	ProcessID() string
	// HasConsumer reports whether this process runs the named consumer.
	HasConsumer(name string) bool
	// RetryConsumer runs consumer once on the message of event id.
	RetryConsumer(ctx context.Context, id, consumer string) error
	// Replay publishes the message of event id again to its topic; it returns the new
	// produced event's id.
	Replay(ctx context.Context, id string) (string, error)
	// Redrive publishes a poisoned message again to its topic for the consumer that
	// poisoned it; it returns the new produced event's id.
	Redrive(ctx context.Context, id string) (string, error)
	// Reconcile applies the desired states in the store now instead of at the next
	// heartbeat.
	Reconcile(ctx context.Context) error
}

// InspectorOptions configures an Inspector.
type InspectorOptions struct {
	// CommandTTL is how long a command waits for a process to claim it. Default 10m.
	CommandTTL time.Duration
	// Live, when not nil, is the bus of this process.
	Live Live
}

// Inspector is the admin API of eventbus, under both the console and the CLI: it lists
// and counts events, shows processes and consumers across processes, sets consumers'
// desired state, and has events retried, replayed and redriven — directly by a bus in
// this process when it can, otherwise through commands that a live process claims.
type Inspector struct {
	events modelevent.Store
	ctl    *Store
	opts   InspectorOptions
}

// NewInspector returns an Inspector over events and the control plane ctl (nil when
// the store has none: process and command calls then fail clearly).
func NewInspector(events modelevent.Store, ctl *Store, opts InspectorOptions) *Inspector {
	if opts.CommandTTL <= 0 {
		opts.CommandTTL = 10 * time.Minute
	}
	return &Inspector{events: events, ctl: ctl, opts: opts}
}

// ErrNoControlPlane is returned for process, consumer and command calls when the
// store keeps no control plane.
var ErrNoControlPlane = errors.New("control: this store keeps no control plane (it needs the SQL store)")

func (i *Inspector) control() (*Store, error) {
	if i.ctl == nil {
		return nil, ErrNoControlPlane
	}
	return i.ctl, nil
}

// Events lists events matching f, newest first.
func (i *Inspector) Events(ctx context.Context, f modelevent.Filter, opts modelevent.ListOptions) (modelevent.Page, error) {
	return i.events.List(ctx, f, opts)
}

// Event returns one event with its attempts.
func (i *Inspector) Event(ctx context.Context, id string) (modelevent.ModelEvent, error) {
	return i.events.Get(ctx, id)
}

// Stats counts the events matching f.
func (i *Inspector) Stats(ctx context.Context, f modelevent.Filter) (modelevent.Stats, error) {
	return i.events.Stats(ctx, f)
}

// Processes lists the registered processes, gone ones included (marked).
func (i *Inspector) Processes(ctx context.Context) ([]Process, error) {
	ctl, err := i.control()
	if err != nil {
		return nil, err
	}
	return ctl.Processes(ctx)
}

// ConsumerView is one consumer across every live process.
type ConsumerView struct {
	Name  string `json:"name"`
	Topic string `json:"topic"`
	// Running and Stopped count the live processes in each state.
	Running   int   `json:"running"`
	Stopped   int   `json:"stopped"`
	Processed int64 `json:"processed"`
	Failed    int64 `json:"failed"`
	InFlight  int64 `json:"in_flight"`
	// Backlog sums the processes' reports; -1 when unknown.
	Backlog   int64     `json:"backlog"`
	LastError string    `json:"last_error,omitempty"`
	LastAt    time.Time `json:"last_message_at,omitzero"`
	// Processes has this consumer's status in each live process, by process id.
	Processes map[string]ConsumerStatus `json:"processes"`
}

// Consumers aggregates the consumers of every live process by name.
func (i *Inspector) Consumers(ctx context.Context) ([]ConsumerView, error) {
	ps, err := i.Processes(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]*ConsumerView{}
	for _, p := range ps {
		if p.Gone {
			continue
		}
		for _, c := range p.Consumers {
			v, ok := byName[c.Name]
			if !ok {
				v = &ConsumerView{Name: c.Name, Topic: c.Topic, Backlog: -1, Processes: map[string]ConsumerStatus{}}
				byName[c.Name] = v
			}
			v.Processes[p.ID] = c
			if c.State == Running {
				v.Running++
			} else {
				v.Stopped++
			}
			v.Processed += c.Processed
			v.Failed += c.Failed
			v.InFlight += c.InFlight
			if c.Backlog > v.Backlog {
				v.Backlog = c.Backlog // processes of one group report the same backlog
			}
			if c.LastMessageAt.After(v.LastAt) {
				v.LastAt = c.LastMessageAt
				if c.LastError != "" {
					v.LastError = c.LastError
				}
			}
			if v.LastError == "" {
				v.LastError = c.LastError
			}
		}
	}
	out := make([]ConsumerView, 0, len(byName))
	for _, v := range byName {
		out = append(out, *v)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

func (i *Inspector) knownConsumer(ctx context.Context, name, processID string) error {
	ps, err := i.Processes(ctx)
	if err != nil {
		return err
	}
	var known []string
	seen := map[string]bool{}
	foundProcess := processID == ""
	var live []string
	gone := ""
	for _, p := range ps {
		if !p.Gone {
			live = append(live, p.ID)
		}
		if p.ID == processID {
			foundProcess = true
			if p.Gone {
				gone = p.LastSeen.UTC().Format(time.RFC3339)
			}
		}
		// A named process may be gone (cut off, restarting): its last report says what
		// it runs, and the desired state waits in the store until it returns.
		if (p.Gone && processID == "") || (processID != "" && p.ID != processID) {
			continue
		}
		for _, c := range p.Consumers {
			if c.Name == name {
				return nil
			}
			if !seen[c.Name] {
				seen[c.Name] = true
				known = append(known, c.Name)
			}
		}
	}
	if !foundProcess {
		return fmt.Errorf("%w: process %q (live processes: %v)", modelevent.ErrNotFound, processID, live)
	}
	sort.Strings(known)
	if len(live) == 0 && gone == "" {
		return fmt.Errorf("%w %q: no live bus process is registered in this store (processes lists them, gone ones marked)", ErrUnknownConsumer, name)
	}
	where := "any live process"
	if processID != "" {
		where = "process " + processID
	}
	if gone != "" {
		where += fmt.Sprintf(", which is gone (no heartbeat since %s; live processes: %v),", gone, live)
	}
	return fmt.Errorf("%w %q: %s runs no such consumer (known: %v)", ErrUnknownConsumer, name, where, known)
}

// SetConsumerState asks consumer to be running or stopped in one process, or in every
// process when processID is empty. Processes apply it within a heartbeat; the bus of
// this process, if any, at once. The consumer must be run by a live process, or by
// the named process as it last reported: a gone process applies the state when it
// comes back.
func (i *Inspector) SetConsumerState(ctx context.Context, consumer, processID string, state State) error {
	ctl, err := i.control()
	if err != nil {
		return err
	}
	if !state.Valid() {
		return fmt.Errorf("control: state %q is not a state (accepted: running, stopped)", state)
	}
	if err := i.knownConsumer(ctx, consumer, processID); err != nil {
		return err
	}
	if err := ctl.SetDesired(ctx, consumer, processID, state); err != nil {
		return err
	}
	if live := i.opts.Live; live != nil && live.HasConsumer(consumer) && (processID == "" || processID == live.ProcessID()) {
		return live.Reconcile(ctx)
	}
	return nil
}

// Outcome is the result of an action on an event: finished at once by the bus of this
// process, or a command for another process to run.
type Outcome struct {
	// Command is the enqueued command; nil when the action ran in this process.
	Command *Command `json:"command,omitempty"`
	// Result is what the action produced (a new event id for replay and redrive).
	Result string `json:"result,omitempty"`
	// Error is the action's error when it ran in this process and failed.
	Error string `json:"error,omitempty"`
}

// Retry has consumer (default: the event's own consumer) run once on the message of
// event id, in this process if it runs the consumer, otherwise by a command.
func (i *Inspector) Retry(ctx context.Context, id, consumer string) (Outcome, error) {
	ev, err := i.events.Get(ctx, id)
	if err != nil {
		return Outcome{}, err
	}
	return i.retry(ctx, ev, consumer)
}

// retry is Retry of the event ev, read already.
func (i *Inspector) retry(ctx context.Context, ev modelevent.ModelEvent, consumer string) (Outcome, error) {
	if consumer == "" {
		if ev.Direction != modelevent.Consumed {
			return Outcome{}, fmt.Errorf("%w: retry %s: it is a %s event; name the consumer to run (or replay it)", ErrConflict, ev.ID, ev.Direction)
		}
		consumer = ev.Handler
	}
	if live := i.opts.Live; live != nil && live.HasConsumer(consumer) {
		if err := live.RetryConsumer(ctx, ev.ID, consumer); err != nil {
			return Outcome{Error: err.Error()}, nil
		}
		return Outcome{}, nil
	}
	if err := i.knownConsumer(ctx, consumer, ""); err != nil {
		return Outcome{}, fmt.Errorf("control: retry %s: %w", ev.ID, err)
	}
	return i.enqueue(ctx, Command{Kind: Retry, EventID: ev.ID, Consumer: consumer})
}

// Replay publishes the message of event id again to its topic, as a new message.
func (i *Inspector) Replay(ctx context.Context, id string) (Outcome, error) {
	ev, err := i.events.Get(ctx, id)
	if err != nil {
		return Outcome{}, err
	}
	return i.replay(ctx, ev)
}

// replay is Replay of the event ev, read already.
func (i *Inspector) replay(ctx context.Context, ev modelevent.ModelEvent) (Outcome, error) {
	if live := i.opts.Live; live != nil {
		newID, err := live.Replay(ctx, ev.ID)
		if err != nil {
			return Outcome{Error: err.Error()}, nil
		}
		return Outcome{Result: newID}, nil
	}
	return i.enqueue(ctx, Command{Kind: Replay, EventID: ev.ID})
}

// Redrive publishes a poisoned message again to its original topic, for the consumer
// that poisoned it only.
func (i *Inspector) Redrive(ctx context.Context, id string) (Outcome, error) {
	ev, err := i.events.Get(ctx, id)
	if err != nil {
		return Outcome{}, err
	}
	return i.redrive(ctx, ev)
}

// redrive is Redrive of the event ev, read already.
func (i *Inspector) redrive(ctx context.Context, ev modelevent.ModelEvent) (Outcome, error) {
	if ev.Direction != modelevent.Consumed || (ev.Status != modelevent.StatusPoisoned && ev.Status != modelevent.StatusFailed) {
		return Outcome{}, fmt.Errorf("%w: redrive %s: only a poisoned or failed consumed event can be redriven; this one is %s %s", ErrConflict, ev.ID, ev.Direction, ev.Status)
	}
	if live := i.opts.Live; live != nil && live.HasConsumer(ev.Handler) {
		newID, err := live.Redrive(ctx, ev.ID)
		if err != nil {
			return Outcome{Error: err.Error()}, nil
		}
		return Outcome{Result: newID}, nil
	}
	return i.enqueue(ctx, Command{Kind: Redrive, EventID: ev.ID, Consumer: ev.Handler})
}

func (i *Inspector) enqueue(ctx context.Context, c Command) (Outcome, error) {
	ctl, err := i.control()
	if err != nil {
		return Outcome{}, err
	}
	c, err = ctl.Enqueue(ctx, c, i.opts.CommandTTL)
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Command: &c}, nil
}

// Count counts the events matching f: the confirmation count of a bulk action.
func (i *Inspector) Count(ctx context.Context, f modelevent.Filter) (int64, error) {
	st, err := i.events.Stats(ctx, f)
	if err != nil {
		return 0, err
	}
	return st.Total, nil
}

// BulkResult sums a bulk action.
type BulkResult struct {
	// Matched is how many events the action applies to. For a replay it counts
	// messages, not rows: a message has a produced row and a row per consumer, and is
	// published once however many of its rows match.
	Matched int `json:"matched"`
	// Rows is how many rows matched the filter, or were selected (each once however
	// its id is cased): Matched, except for a replay.
	Rows int `json:"rows"`
	// Done counts actions finished in this process; Enqueued, commands for others.
	Done     int `json:"done"`
	Enqueued int `json:"enqueued"`
	// Failed counts actions that failed or were refused, with the first errors.
	Failed int      `json:"failed"`
	Errors []string `json:"errors,omitempty"`
	// Commands are the ids of the enqueued commands.
	Commands []string `json:"commands,omitempty"`
}

// BulkTargets lists what a bulk action of kind applies to among the events matching
// f, reading at most maxRows rows (0: all): every matching row, except for a replay,
// one row per message (the first, newest, of its matching rows). rows is how many
// rows were read; more is true when maxRows stopped the reading.
func (i *Inspector) BulkTargets(ctx context.Context, kind CommandKind, f modelevent.Filter, maxRows int) (targets []string, rows int, more bool, err error) {
	seen := map[string]bool{}
	opts := modelevent.ListOptions{Limit: 1000}
	for {
		page, err := i.events.List(ctx, f, opts)
		if err != nil {
			return targets, rows, false, err
		}
		for _, ev := range page.Events {
			if maxRows > 0 && rows == maxRows {
				return targets, rows, true, nil
			}
			rows++
			if kind == Replay {
				if seen[ev.MessageUUID] {
					continue
				}
				seen[ev.MessageUUID] = true
			}
			targets = append(targets, ev.ID)
		}
		if page.NextCursor == "" {
			return targets, rows, false, nil
		}
		opts.Cursor = page.NextCursor
	}
}

// Bulk applies kind (retry, replay or redrive) to every event matching f — all of
// them, not one page. Retry uses each event's own consumer; replay publishes each
// matching message once (see BulkTargets).
func (i *Inspector) Bulk(ctx context.Context, kind CommandKind, f modelevent.Filter) (BulkResult, error) {
	if !kind.Valid() {
		return BulkResult{}, notAnAction(kind)
	}
	ids, rows, _, err := i.BulkTargets(ctx, kind, f, 0)
	if err != nil {
		return BulkResult{Matched: len(ids), Rows: rows}, err
	}
	return i.apply(ctx, kind, ids, rows), nil
}

// Selection is a selection of events for a bulk action, read once by
// SelectionTargets: its dry run (Counts) and its action (ApplySelection) see the same
// events, and the store is not read again to act on them.
type Selection struct {
	// Kind is the action.
	Kind CommandKind
	// Targets are the events the action applies to, in the order selected: every
	// selected event, except for a replay, one per message (the first selected of its
	// rows). History may be empty (GetMany does not read it): no action uses it.
	Targets []modelevent.ModelEvent
	// Rows is how many distinct ids were selected (an id in lower and in upper case is
	// one).
	Rows int
	// Unknown has the reason of each selected id that is no event (deleted or pruned
	// since it was listed, say): each counts as one failed action, so that one stale
	// row does not fail the rest of the selection.
	Unknown []string
}

// Counts is the BulkResult of the selection's dry run: nothing is done; Matched counts
// the targets and the unknown ids, and the unknown ids count as failed with their
// reasons, as ApplySelection counts them.
func (s Selection) Counts() BulkResult {
	res := BulkResult{Matched: len(s.Targets) + len(s.Unknown), Rows: s.Rows}
	for _, why := range s.Unknown {
		res.fail(why)
	}
	return res
}

// SelectionTargets reads the events of ids (a selection; an id repeated, in either
// case, is read and counted once) in one GetMany of the store (Store.Get for each id
// on a store without it), and returns what a bulk action of kind applies to (see
// Selection). An id the store does not return — no longer stored, or malformed — goes
// to Unknown with its reason. Any error of the store fails the whole selection: it is
// returned, with an empty Selection, and nothing is acted on (an outage is not a
// reason to act on part of a selection).
func (i *Inspector) SelectionTargets(ctx context.Context, kind CommandKind, ids []string) (Selection, error) {
	if !kind.Valid() {
		return Selection{Kind: kind}, notAnAction(kind)
	}
	// The distinct ids in the order selected, each in its canonical (upper-case)
	// spelling: a row is one row however its id is cased.
	distinct := make([]string, 0, len(ids))
	seenID := make(map[string]bool, len(ids))
	for _, id := range ids {
		if modelevent.ValidID(id) {
			id = strings.ToUpper(id)
		}
		if !seenID[id] {
			seenID[id] = true
			distinct = append(distinct, id)
		}
	}
	byID, err := i.getMany(ctx, distinct)
	if err != nil {
		return Selection{Kind: kind}, fmt.Errorf("control: read the selection of %d events: %w", len(distinct), err)
	}
	sel := Selection{Kind: kind, Rows: len(distinct)}
	seen := map[string]bool{}
	for _, id := range distinct {
		ev, ok := byID[id]
		if !ok {
			sel.Unknown = append(sel.Unknown, unknownID(id))
			continue
		}
		key := ev.ID
		if kind == Replay {
			key = ev.MessageUUID
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		sel.Targets = append(sel.Targets, ev)
	}
	return sel, nil
}

// manyGetter is a store that reads many events in one call: *modelevent.SQLStore, and
// a store that embeds one (the method is part of modelevent.Scheduler).
type manyGetter interface {
	GetMany(ctx context.Context, ids []string) ([]modelevent.ModelEvent, error)
}

// getMany reads the events of ids (canonical spellings), by id; an id that is no event
// (malformed, or not stored) is not in the map. The malformed ids are not sent to the
// store.
func (i *Inspector) getMany(ctx context.Context, ids []string) (map[string]modelevent.ModelEvent, error) {
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		if modelevent.ValidID(id) {
			valid = append(valid, id)
		}
	}
	byID := make(map[string]modelevent.ModelEvent, len(valid))
	if len(valid) == 0 {
		return byID, nil
	}
	if s, ok := i.events.(manyGetter); ok {
		evs, err := s.GetMany(ctx, valid)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			byID[ev.ID] = ev
		}
		return byID, nil
	}
	for _, id := range valid {
		ev, err := i.events.Get(ctx, id)
		if errors.Is(err, modelevent.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		byID[id] = ev
	}
	return byID, nil
}

// unknownID is the reason a selected id that the store did not return counts as
// failed: the malformed id's, or not found.
func unknownID(id string) string {
	if err := modelevent.CheckEventID(id); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%v: id %q", modelevent.ErrNotFound, id)
}

// ApplySelection applies the selection's action to each of its targets, as read by
// SelectionTargets (the store is not read again), and sums the outcomes with the
// unknown ids counted as failed (see Counts).
func (i *Inspector) ApplySelection(ctx context.Context, sel Selection) BulkResult {
	res := sel.Counts()
	for _, ev := range sel.Targets {
		out, err := i.act(ctx, sel.Kind, ev)
		res.add(out, err)
	}
	return res
}

// BulkEvents applies kind to the events of ids (a selection): SelectionTargets then
// ApplySelection. Each event is acted on once, except for a replay, which publishes
// each of their messages once. An id that is not found, or to which the action does
// not apply, counts as failed with its reason; an error is returned only for an
// action that is none, or when the store fails to read the selection.
func (i *Inspector) BulkEvents(ctx context.Context, kind CommandKind, ids []string) (BulkResult, error) {
	sel, err := i.SelectionTargets(ctx, kind, ids)
	if err != nil {
		return sel.Counts(), err
	}
	return i.ApplySelection(ctx, sel), nil
}

// apply runs kind on each of ids (a listing's: canonical ids), reading their events
// bulkChunk at a time with getMany, and sums the outcomes. An id no longer stored, or
// a chunk the store fails to read, counts as failed with its reason.
func (i *Inspector) apply(ctx context.Context, kind CommandKind, ids []string, rows int) BulkResult {
	res := BulkResult{Matched: len(ids), Rows: rows}
	for start := 0; start < len(ids); start += bulkChunk {
		chunk := ids[start:min(start+bulkChunk, len(ids))]
		byID, err := i.getMany(ctx, chunk)
		for _, id := range chunk {
			ev, ok := byID[id]
			switch {
			case err != nil:
				res.add(Outcome{}, err)
			case !ok:
				res.fail(unknownID(id))
			default:
				res.add(i.act(ctx, kind, ev))
			}
		}
	}
	return res
}

// bulkChunk is how many events of a bulk action by filter are read at once.
const bulkChunk = 500

// act runs kind on the event ev, read already: a retry with the event's own consumer.
func (i *Inspector) act(ctx context.Context, kind CommandKind, ev modelevent.ModelEvent) (Outcome, error) {
	switch kind {
	case Retry:
		return i.retry(ctx, ev, "")
	case Replay:
		return i.replay(ctx, ev)
	case Redrive:
		return i.redrive(ctx, ev)
	}
	return Outcome{}, notAnAction(kind)
}

// notAnAction is the error of a bulk action whose kind is none of retry, replay and
// redrive: the one wording for Bulk, SelectionTargets and ApplySelection.
func notAnAction(kind CommandKind) error {
	return fmt.Errorf("control: %q is not an action (accepted: retry, replay, redrive)", kind)
}

// add counts the outcome of one action of a bulk.
func (r *BulkResult) add(out Outcome, err error) {
	switch {
	case err != nil:
		r.fail(err.Error())
	case out.Error != "":
		r.fail(out.Error)
	case out.Command != nil:
		r.Enqueued++
		r.Commands = append(r.Commands, out.Command.ID)
	default:
		r.Done++
	}
}

// fail counts one failed action, keeping the first ten reasons.
func (r *BulkResult) fail(why string) {
	r.Failed++
	if len(r.Errors) < 10 {
		r.Errors = append(r.Errors, why)
	}
}

// Command returns one command.
func (i *Inspector) Command(ctx context.Context, id string) (Command, error) {
	ctl, err := i.control()
	if err != nil {
		return Command{}, err
	}
	return ctl.Command(ctx, id)
}

// Commands lists recent commands, newest first, optionally only those in status.
func (i *Inspector) Commands(ctx context.Context, status CommandStatus, limit int) ([]Command, error) {
	ctl, err := i.control()
	if err != nil {
		return nil, err
	}
	return ctl.Commands(ctx, status, limit)
}

// WaitCommand polls command id until it is done or ctx ends.
func (i *Inspector) WaitCommand(ctx context.Context, id string) (Command, error) {
	for {
		c, err := i.Command(ctx, id)
		if err != nil || c.Status.Done() {
			return c, err
		}
		select {
		case <-ctx.Done():
			return c, fmt.Errorf("control: wait for command %s (still %s): %w", id, c.Status, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
