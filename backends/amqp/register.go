package amqp

import (
	"context"

	"github.com/go-eventbus/eventbus/bus"
)

// Name is the backend's name in bus.Config.Backend.
const Name = "amqp"

var _ bus.Backlogger = (*Backend)(nil)

func init() { bus.Register(Name, factory) }

// factory decodes backend_settings into a Config and connects.
func factory(ctx context.Context, settings map[string]any, opts bus.BackendOptions) (bus.Backend, error) {
	var cfg Config
	if err := bus.DecodeSettings(settings, &cfg); err != nil {
		return nil, err
	}
	b, err := New(ctx, cfg, opts.WatermillLogger)
	if err != nil {
		return nil, err
	}
	return b, nil
}
