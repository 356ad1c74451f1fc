package control

import (
	"context"
	"errors"
	"time"

	"github.com/go-eventbus/eventbus/modelevent"
)

// insightStore is the part of a store that answers the console's overview; the SQL
// store implements it.
type insightStore interface {
	Timeline(ctx context.Context, f modelevent.Filter, bucket time.Duration) ([]modelevent.TimelinePoint, error)
	SlowestHandlers(ctx context.Context, since time.Time, limit int) ([]modelevent.HandlerLatency, error)
	TopErrors(ctx context.Context, f modelevent.Filter, limit int) ([]modelevent.ErrorCount, error)
}

// ErrNoInsights is returned by the overview calls when the event store cannot answer
// them (a custom store without the SQL store's insight queries).
var ErrNoInsights = errors.New("control: this event store has no overview queries (it needs the SQL store)")

func (i *Inspector) insights() (insightStore, error) {
	s, ok := i.events.(insightStore)
	if !ok {
		return nil, ErrNoInsights
	}
	return s, nil
}

// Timeline counts the events matching f per time bucket, topic, direction and status,
// drawn from the ModelEvent rows. f.Since must be set.
func (i *Inspector) Timeline(ctx context.Context, f modelevent.Filter, bucket time.Duration) ([]modelevent.TimelinePoint, error) {
	s, err := i.insights()
	if err != nil {
		return nil, err
	}
	return s.Timeline(ctx, f, bucket)
}

// SlowestHandlers lists the handlers with the slowest average attempt since since.
func (i *Inspector) SlowestHandlers(ctx context.Context, since time.Time, limit int) ([]modelevent.HandlerLatency, error) {
	s, err := i.insights()
	if err != nil {
		return nil, err
	}
	return s.SlowestHandlers(ctx, since, limit)
}

// TopErrors lists the most frequent errors of the events matching f.
func (i *Inspector) TopErrors(ctx context.Context, f modelevent.Filter, limit int) ([]modelevent.ErrorCount, error) {
	s, err := i.insights()
	if err != nil {
		return nil, err
	}
	return s.TopErrors(ctx, f, limit)
}
