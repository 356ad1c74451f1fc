package control

import (
	"context"
	"encoding/json"
	"time"

	"github.com/go-eventbus/eventbus/modelevent"
)

// RetentionPolicy is what a bus process's pruner deletes (bus.RetentionConfig).
type RetentionPolicy struct {
	// MaxAge is how long rows of each status are kept; statuses absent are kept.
	MaxAge map[modelevent.Status]time.Duration `json:"max_age"`
	// MaxRows caps the rows kept; 0: no cap.
	MaxRows int64 `json:"max_rows,omitempty"`
	// Commands is how long finished commands are kept.
	Commands time.Duration `json:"commands,omitempty"`
	// Interval is how often the pruner runs.
	Interval time.Duration `json:"interval"`
}

// RetentionReport is what the pruning process keeps with its lease
// (modelevent.RetentionLease): its policy and its last run.
type RetentionReport struct {
	Policy     RetentionPolicy         `json:"policy"`
	LastRun    time.Time               `json:"last_run,omitzero"`
	LastResult *modelevent.PruneResult `json:"last_result,omitempty"`
	LastError  string                  `json:"last_error,omitempty"`
}

// Retention is the retention in force and the oldest row kept.
type Retention struct {
	// Active is true while a live bus process holds the retention lease: rows are
	// pruned. False: no process prunes (retention is off, or its process is gone), and
	// Report is what the last holder reported, if any.
	Active bool `json:"active"`
	// Holder is the process id of the last holder; empty if none ever pruned.
	Holder string          `json:"holder,omitempty"`
	Report RetentionReport `json:"report"`
	// OldestID and OldestAt are the id and creation time of the oldest row kept; empty
	// for an empty store.
	OldestID string    `json:"oldest_id,omitempty"`
	OldestAt time.Time `json:"oldest_at,omitzero"`
}

type retentionStore interface {
	GetLease(ctx context.Context, name string) (modelevent.Lease, error)
	Oldest(ctx context.Context) (string, time.Time, error)
}

// Retention returns the retention in force, as the pruning bus process reports it in
// the store, and the oldest row kept. A store other than the SQL store reports none.
func (i *Inspector) Retention(ctx context.Context) (Retention, error) {
	var r Retention
	s, ok := i.events.(retentionStore)
	if !ok {
		return r, nil
	}
	l, err := s.GetLease(ctx, modelevent.RetentionLease)
	if err != nil {
		return r, err
	}
	r.Active, r.Holder = l.Held(time.Now()), l.Holder
	if l.Info != "" {
		_ = json.Unmarshal([]byte(l.Info), &r.Report) // a report of another version is shown as none
	}
	if r.OldestID, r.OldestAt, err = s.Oldest(ctx); err != nil {
		return r, err
	}
	return r, nil
}
