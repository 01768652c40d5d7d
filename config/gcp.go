package config

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// GCP is the platform's own Google Cloud access, for customer keys in
// Cloud KMS: the gcp: block. Present (even as "gcp: {}"), byok serve
// offers the gcp-kms provider; absent, it does not. Customers grant the
// platform's service account roles/cloudkms.cryptoKeyEncrypterDecrypter
// and roles/cloudkms.viewer on their key.
//
//	gcp:
//	  credentials_file: /etc/byok/gcp-key.json
//	  service_account: byok@platform-project.iam.gserviceaccount.com
type GCP struct {
	// CredentialsFile is the platform's service account key file, or a
	// workload identity federation (external_account) file; empty means
	// Google's Application Default Credentials
	// (GOOGLE_APPLICATION_CREDENTIALS, gcloud's, the metadata server).
	CredentialsFile string `yaml:"credentials_file"`
	// ServiceAccount is the platform's service account email, which
	// customers grant on their keys; empty means the client_email of the
	// credentials file. Set it with the default credentials, or
	// customers are shown a placeholder.
	ServiceAccount string `yaml:"service_account"`
	// Endpoint replaces the Cloud KMS gRPC endpoint, host:port (a
	// regional or Private Service Connect endpoint, or an emulator).
	Endpoint string `yaml:"endpoint"`
	// CAFile is a PEM file of the CA certificates the endpoint's
	// certificate must chain to, instead of the system's (an emulator's
	// ca.pem, or a TLS-inspecting proxy's).
	CAFile string `yaml:"ca_file"`
	// Timeout bounds each Cloud KMS call, retries included; 0 means 30s.
	Timeout time.Duration `yaml:"timeout"`
}

var gcpServiceAccountRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*@[a-z0-9][a-z0-9.-]*\.[a-z]+$`)

// validateGCP checks the gcp: block, when there is one.
func (c *Config) validateGCP(bad func(field, format string, args ...any)) {
	g := c.GCP
	if g == nil {
		return
	}
	if g.CredentialsFile != strings.TrimSpace(g.CredentialsFile) {
		bad("gcp.credentials_file", "is %q, with spaces around it; give the path of the platform's service account key file, or leave it out for Google's default credentials", g.CredentialsFile)
	}
	if g.ServiceAccount != "" && !gcpServiceAccountRE.MatchString(g.ServiceAccount) {
		bad("gcp.service_account", "is %q; give the platform's service account email, e.g. byok@platform-project.iam.gserviceaccount.com (IAM & Admin > Service accounts), or leave it out to take the key file's", g.ServiceAccount)
	}
	if g.Endpoint != "" {
		host, port, err := net.SplitHostPort(g.Endpoint)
		n, perr := strconv.Atoi(port)
		if err != nil || host == "" || strings.Contains(host, "/") || perr != nil || n < 1 || n > 65535 {
			bad("gcp.endpoint", "is %q; give the gRPC endpoint as host:port, e.g. europe-west1-cloudkms.googleapis.com:443 (no https://), or leave it out for cloudkms.googleapis.com:443", g.Endpoint)
		}
	}
	if g.CAFile != "" && g.Endpoint == "" {
		bad("gcp.ca_file", "is set without gcp.endpoint; Google's endpoint chains to the system's CAs: give the endpoint the CA file is for, or leave the CA file out")
	}
	if g.Timeout < 0 || (g.Timeout > 0 && g.Timeout < time.Second) {
		bad("gcp.timeout", "is %v; use at least 1s, or leave it out for 30s", g.Timeout)
	}
}
