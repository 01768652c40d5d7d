package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"github.com/openbyok/byok/config"
	"github.com/openbyok/byok/lifecycle/gcp"
)

// gcpConnector returns the connector of Google Cloud KMS with the
// platform's Google Cloud access the gcp: block describes: its service
// account key file (Google's Application Default Credentials when none),
// its service account, endpoint and CA file. It logs the service account
// customers grant on their keys (a warning when it is not known: customers
// are then shown a placeholder, but byok still starts).
func gcpConnector(c config.GCP, logger *slog.Logger) (*gcp.Connector, error) {
	cfg := gcp.Config{ServiceAccount: c.ServiceAccount, Endpoint: c.Endpoint, Timeout: c.Timeout, Logger: logger}
	if c.CredentialsFile != "" {
		b, err := os.ReadFile(c.CredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("gcp.credentials_file: %w", err)
		}
		cfg.CredentialsJSON = b
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("gcp.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("gcp.ca_file: %s holds no PEM certificate; give the CA certificate of gcp.endpoint (e.g. gcpkmsemu's ca.pem)", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	conn, err := gcp.New(cfg)
	if err != nil {
		if c.CredentialsFile != "" {
			return nil, fmt.Errorf("gcp.credentials_file %s: %w", c.CredentialsFile, err)
		}
		return nil, err
	}
	if p := conn.Platform(context.Background()); p.ServiceAccount != "" {
		logger.Info("gcp-kms offered: customers grant the platform's service account on their keys", "service_account", p.ServiceAccount)
	} else {
		logger.Warn("gcp-kms offered with Google's default credentials, but the platform's service account is not known: set gcp.service_account, which customers grant on their keys")
	}
	return conn, nil
}
