package nats

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/ThreeDotsLabs/watermill"
	natsgo "github.com/nats-io/nats.go"

	"github.com/go-eventbus/eventbus/internal/tlsfiles"
)

// connOptions builds the nats.go options shared by every connection of the backend.
func connOptions(cfg Config, logger watermill.LoggerAdapter) ([]natsgo.Option, error) {
	opts := []natsgo.Option{
		natsgo.Timeout(cfg.ConnectTimeout),
		natsgo.ReconnectWait(cfg.ReconnectWait),
		natsgo.MaxReconnects(cfg.maxReconnects()),
		natsgo.DisconnectErrHandler(func(nc *natsgo.Conn, err error) {
			logger.Info("nats: disconnected", watermill.LogFields{"connection": nc.Opts.Name, "error": fmt.Sprint(err)})
		}),
		natsgo.ReconnectHandler(func(nc *natsgo.Conn) {
			logger.Info("nats: reconnected", watermill.LogFields{"connection": nc.Opts.Name, "url": nc.ConnectedUrlRedacted()})
		}),
		natsgo.ErrorHandler(func(nc *natsgo.Conn, sub *natsgo.Subscription, err error) {
			fields := watermill.LogFields{"connection": nc.Opts.Name}
			if sub != nil {
				fields["subject"] = sub.Subject
			}
			logger.Error("nats: asynchronous error", err, fields)
		}),
	}
	switch {
	case cfg.CredentialsFile != "":
		opts = append(opts, natsgo.UserCredentials(cfg.CredentialsFile))
	case cfg.NkeySeedFile != "":
		o, err := natsgo.NkeyOptionFromSeed(cfg.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("backend_settings.nkey_seed_file: %w", err)
		}
		opts = append(opts, o)
	case cfg.Username != "":
		opts = append(opts, natsgo.UserInfo(cfg.Username, cfg.Password))
	case cfg.Token != "":
		opts = append(opts, natsgo.Token(cfg.Token))
	}
	if cfg.TLS.enabled() {
		tc, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, natsgo.Secure(tc))
	}
	return opts, nil
}

// tlsConfig loads the files of t.
func tlsConfig(t TLSConfig) (*tls.Config, error) {
	return tlsfiles.Load("backend_settings.tls", tlsfiles.Files{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, InsecureSkipVerify: t.InsecureSkipVerify})
}

// connect opens a connection named after its role, within ctx and ConnectTimeout per
// server.
func (b *Backend) connect(ctx context.Context, role string) (*natsgo.Conn, error) {
	opts := append(append([]natsgo.Option(nil), b.natsOpts...), natsgo.Name("eventbus "+role))
	type result struct {
		nc  *natsgo.Conn
		err error
	}
	done := make(chan result, 1)
	url := b.url()
	go func() {
		nc, err := natsgo.Connect(url, opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, b.connectError(r.err)
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, b.connectError(ctx.Err())
	}
}

// connectError explains a failed connection: which key to check and what to do.
func (b *Backend) connectError(err error) error {
	if b.embedded != nil {
		return fmt.Errorf("connect to the embedded server at %s: %w", b.url(), err)
	}
	hint := "start nats-server -js there, fix backend_settings.url, or set embedded: true to run one in-process"
	switch {
	case errors.Is(err, natsgo.ErrAuthorization), strings.Contains(strings.ToLower(err.Error()), "authorization"):
		hint = "check backend_settings username/password, token, credentials_file or nkey_seed_file"
	case strings.Contains(err.Error(), "tls"), strings.Contains(err.Error(), "x509"):
		hint = "check backend_settings.tls and the URL scheme"
	}
	return fmt.Errorf("backend_settings.url: cannot connect to %s within %s: %w (%s)", redactedURLs(b.urls), b.cfg.ConnectTimeout, err, hint)
}

// url returns the comma-separated server URLs to connect to.
func (b *Backend) url() string {
	if b.embedded != nil {
		return b.embedded.URL()
	}
	return strings.Join(b.urls, ",")
}

// checkJetStream fails unless the server has JetStream enabled for this account.
func (b *Backend) checkJetStream(ctx context.Context, js natsgo.JetStreamContext) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.ConnectTimeout)
	defer cancel()
	if _, err := js.AccountInfo(natsgo.Context(ctx)); err != nil {
		if errors.Is(err, natsgo.ErrJetStreamNotEnabled) || errors.Is(err, natsgo.ErrJetStreamNotEnabledForAccount) {
			return fmt.Errorf("backend_settings.url: JetStream is not enabled on %s (start nats-server with -js, or enable JetStream for the account): %w", redactedURLs(b.urls), err)
		}
		return fmt.Errorf("backend_settings.url: JetStream check on %s: %w", redactedURLs(b.urls), err)
	}
	return nil
}
