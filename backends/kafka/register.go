package kafka

import (
	"context"

	"github.com/go-eventbus/eventbus/bus"
)

// Name is the backend's name in bus.Config.Backend.
const Name = "kafka"

func init() { bus.Register(Name, factory) }

// factory decodes backend_settings into a Config and opens the backend.
func factory(ctx context.Context, settings map[string]any, opts bus.BackendOptions) (bus.Backend, error) {
	var cfg Config
	if err := bus.DecodeSettings(settings, &cfg); err != nil {
		return nil, err
	}
	b, err := open(ctx, cfg, opts.WatermillLogger)
	if err != nil {
		return nil, err
	}
	return b, nil
}
