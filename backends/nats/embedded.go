package nats

import (
	"fmt"
	"path/filepath"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/go-eventbus/eventbus/backends/nats/internal/embedlink"
)

// errEmbeddedNotLinked is Validate's error for embedded: true in a program that does
// not link the server.
var errEmbeddedNotLinked = fmt.Errorf("backend_settings.embedded: the embedded NATS server is not linked into this program: add import _ %q (or connect to a server with url)", embedlink.Import)

// startEmbedded starts the embedded server for cfg (defaults applied).
func startEmbedded(cfg Config, logger watermill.LoggerAdapter) (embedlink.Server, error) {
	if !embedlink.Linked() {
		return nil, errEmbeddedNotLinked
	}
	dir, err := filepath.Abs(cfg.StoreDir)
	if err != nil {
		return nil, fmt.Errorf("backend_settings.store_dir: %w", err)
	}
	return embedlink.Start(embedlink.Options{
		StoreDir:     dir,
		Port:         cfg.Port,
		Username:     cfg.Username,
		Password:     cfg.Password,
		Token:        cfg.Token,
		ReadyTimeout: cfg.ConnectTimeout,
		Logger:       logger,
	})
}
