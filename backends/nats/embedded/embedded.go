// Package embedded links the embedded NATS server into a program: with it imported, the
// nats backend's `embedded: true` starts a real NATS server with JetStream inside the
// process (github.com/nats-io/nats-server/v2), storing messages in store_dir — a
// durable broker with no external service, for one-machine deployments and demos.
//
//	import (
//		_ "github.com/go-eventbus/eventbus/backends/nats"          // registers "nats"
//		_ "github.com/go-eventbus/eventbus/backends/nats/embedded" // embedded: true
//	)
//
// The server is a package of its own because it is large (it adds about 10 MiB to a
// binary): a program that connects to an external NATS server does not link it.
// backends/all imports it.
package embedded

import (
	"fmt"
	"net"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/go-eventbus/eventbus/backends/nats/internal/embedlink"
)

func init() {
	embedlink.Register(start)
}

// natsServer is a NATS server with JetStream running in this process. It can be shut
// down and started again on the same port and store directory.
type natsServer struct {
	opts *server.Options
	cfg  embedlink.Options

	mu  sync.Mutex
	srv *server.Server
}

// start starts a server for o.
func start(o embedlink.Options) (embedlink.Server, error) {
	port := o.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "eventbus-embedded",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		Username:   o.Username,
		Password:   o.Password,
		// A lone server: no cluster, gateway, leafnode or monitoring listener.
		HTTPPort: 0,
	}
	if o.Token != "" {
		opts.Authorization = o.Token
	}
	if o.Logger == nil {
		o.Logger = watermill.NopLogger{}
	}
	s := &natsServer{opts: opts, cfg: o}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// Start starts a new server; a random port becomes fixed for the next start.
func (s *natsServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	srv, err := server.NewServer(s.opts.Clone())
	if err != nil {
		return fmt.Errorf("embedded server: %w", err)
	}
	srv.SetLoggerV2(serverLogger{s.cfg.Logger}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(s.cfg.ReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("embedded server: not ready within %s (is port %d free? is store_dir %s writable?)",
			s.cfg.ReadyTimeout, s.opts.Port, s.opts.StoreDir)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("embedded server: JetStream did not start (is store_dir %s writable?)", s.opts.StoreDir)
	}
	if addr, ok := srv.Addr().(*net.TCPAddr); ok {
		s.opts.Port = addr.Port
	}
	s.srv = srv
	s.cfg.Logger.Info("nats: embedded server started", watermill.LogFields{"url": s.URL(), "store_dir": s.opts.StoreDir})
	return nil
}

// Shutdown stops the server and waits for it; its files stay. It is idempotent.
func (s *natsServer) Shutdown() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	s.cfg.Logger.Info("nats: embedded server stopped", watermill.LogFields{"store_dir": s.opts.StoreDir})
}

// URL is the address clients connect to.
func (s *natsServer) URL() string {
	return fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port)
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
