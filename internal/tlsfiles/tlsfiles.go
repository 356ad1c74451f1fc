// Package tlsfiles builds a client tls.Config from the PEM files named in a backend's
// settings, with errors that name the settings key.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Files are the TLS settings every backend accepts.
type Files struct {
	// CAFile holds the PEM certificates that verify the server; empty: the system roots.
	CAFile string
	// CertFile and KeyFile hold the client certificate and key, for mutual TLS.
	CertFile, KeyFile string
	// InsecureSkipVerify skips server verification (tests only).
	InsecureSkipVerify bool
}

// Load returns a TLS 1.2+ client config for f. key is the settings path of the TLS
// section, e.g. "backend_settings.tls", used in errors.
func Load(key string, f Files) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: f.InsecureSkipVerify} //nolint:gosec // opt-in, documented as for tests
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", key, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file: %s holds no PEM certificate", key, f.CAFile)
		}
		tc.RootCAs = pool
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New(key + ": cert_file and key_file go together; set both for mutual TLS, or neither")
	}
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s.cert_file: load %s with key_file %s: %w", key, f.CertFile, f.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
