package nats

import (
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats-server/v2/server"
)

// embeddedServer is a NATS server with JetStream running in this process. It can be
// shut down and started again on the same port and store directory.
type embeddedServer struct {
	opts    *server.Options
	timeout time.Duration
	logger  watermill.LoggerAdapter

	mu  sync.Mutex
	srv *server.Server
}

// startEmbedded starts a server for cfg (defaults applied).
func startEmbedded(cfg Config, logger watermill.LoggerAdapter) (*embeddedServer, error) {
	dir, err := filepath.Abs(cfg.StoreDir)
	if err != nil {
		return nil, fmt.Errorf("backend_settings.store_dir: %w", err)
	}
	port := cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "eventbus-embedded",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		Username:   cfg.Username,
		Password:   cfg.Password,
		// A lone server: no cluster, gateway, leafnode or monitoring listener.
		HTTPPort: 0,
	}
	if cfg.Token != "" {
		opts.Authorization = cfg.Token
	}
	e := &embeddedServer{opts: opts, timeout: cfg.ConnectTimeout, logger: logger}
	if err := e.start(); err != nil {
		return nil, err
	}
	return e, nil
}

// start starts a new server; a random port becomes fixed for the next start.
func (e *embeddedServer) start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv != nil {
		return nil
	}
	srv, err := server.NewServer(e.opts.Clone())
	if err != nil {
		return fmt.Errorf("embedded server: %w", err)
	}
	srv.SetLoggerV2(serverLogger{e.logger}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(e.timeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("embedded server: not ready within %s (is port %d free? is store_dir %s writable?)", e.timeout, e.opts.Port, e.opts.StoreDir)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("embedded server: JetStream did not start (is store_dir %s writable?)", e.opts.StoreDir)
	}
	if addr, ok := srv.Addr().(*net.TCPAddr); ok {
		e.opts.Port = addr.Port
	}
	e.srv = srv
	e.logger.Info("nats: embedded server started", watermill.LogFields{"url": e.url(), "store_dir": e.opts.StoreDir})
	return nil
}

// shutdown stops the server and waits for it; its files stay. It is idempotent.
func (e *embeddedServer) shutdown() {
	e.mu.Lock()
	srv := e.srv
	e.srv = nil
	e.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	e.logger.Info("nats: embedded server stopped", watermill.LogFields{"store_dir": e.opts.StoreDir})
}

// url is the address clients connect to.
func (e *embeddedServer) url() string {
	return fmt.Sprintf("nats://127.0.0.1:%d", e.opts.Port)
}

// serverLogger forwards the embedded server's logs: errors as errors, warnings as
// info, the rest at debug.
type serverLogger struct{ l watermill.LoggerAdapter }

func (s serverLogger) Noticef(format string, v ...any) {
	s.l.Debug("nats-server: "+fmt.Sprintf(format, v...), nil)
}
func (s serverLogger) Warnf(format string, v ...any) {
	s.l.Info("nats-server: "+fmt.Sprintf(format, v...), nil)
}
func (s serverLogger) Fatalf(format string, v ...any) {
	s.l.Error("nats-server", fmt.Errorf(format, v...), nil)
}
func (s serverLogger) Errorf(format string, v ...any) {
	s.l.Error("nats-server", fmt.Errorf(format, v...), nil)
}
func (s serverLogger) Debugf(format string, v ...any) {
	s.l.Trace("nats-server: "+fmt.Sprintf(format, v...), nil)
}
func (s serverLogger) Tracef(format string, v ...any) {
	s.l.Trace("nats-server: "+fmt.Sprintf(format, v...), nil)
}
