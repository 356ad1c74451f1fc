package sqlbackend

import (
	"context"

	"github.com/go-eventbus/eventbus/bus"
)

// Name is the backend's name in bus.Config.Backend.
const Name = "sql"

func init() {
	bus.Register(Name, func(ctx context.Context, settings map[string]any, opts bus.BackendOptions) (bus.Backend, error) {
		var cfg Config
		if err := bus.DecodeSettings(settings, &cfg); err != nil {
			return nil, err
		}
		return open(ctx, cfg, opts.WatermillLogger)
	})
}
