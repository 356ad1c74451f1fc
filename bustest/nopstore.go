package bustest

import (
	"context"

	"github.com/go-eventbus/eventbus/modelevent"
)

// NopStore is a modelevent.Store that stores nothing: Write returns nil at once, Get
// finds nothing, List and Stats are empty. Given as bus.Config.EventStore, it leaves the
// bus's own layer (chain, recorder hand-off, contexts) to measure, without a database.
type NopStore struct{}

// Write stores nothing.
func (NopStore) Write(context.Context, []modelevent.Change) error { return nil }

// Get returns an error wrapping modelevent.ErrNotFound.
func (NopStore) Get(context.Context, string) (modelevent.ModelEvent, error) {
	return modelevent.ModelEvent{}, modelevent.ErrNotFound
}

// List returns an empty page.
func (NopStore) List(context.Context, modelevent.Filter, modelevent.ListOptions) (modelevent.Page, error) {
	return modelevent.Page{}, nil
}

// Stats returns empty counts.
func (NopStore) Stats(context.Context, modelevent.Filter) (modelevent.Stats, error) {
	return modelevent.Stats{}, nil
}

// Close does nothing.
func (NopStore) Close() error { return nil }
