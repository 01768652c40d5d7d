package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/config"
)

func TestGCPAbsentOrEmpty(t *testing.T) {
	c, err := config.Parse([]byte(minimal))
	if err != nil || c.GCP != nil {
		t.Fatalf("no gcp block: GCP = %+v, %v", c.GCP, err)
	}
	c, err = config.Parse([]byte(minimal + "gcp: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.GCP == nil || *c.GCP != (config.GCP{}) {
		t.Fatalf("gcp: {} decodes to %+v, want an empty block (Google's default credentials)", c.GCP)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestGCPFull(t *testing.T) {
	c, err := config.Parse([]byte(minimal + `gcp:
  credentials_file: /etc/byok/gcp-key.json
  service_account: byok@platform-project.iam.gserviceaccount.com
  endpoint: 127.0.0.1:8443
  ca_file: /etc/byok/gcpkmsemu-ca.pem
  timeout: 10s
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	g := c.GCP
	if g.CredentialsFile != "/etc/byok/gcp-key.json" || g.ServiceAccount != "byok@platform-project.iam.gserviceaccount.com" ||
		g.Endpoint != "127.0.0.1:8443" || g.CAFile != "/etc/byok/gcpkmsemu-ca.pem" || g.Timeout != 10*time.Second {
		t.Fatalf("decoded %+v", g)
	}
}

var gcpErrorTests = map[string]struct{ block, want string }{
	"unknown field":        {"gcp: {credential_file: /k.json}", "field credential_file not found"},
	"key inline":           {"gcp: {private_key: x}", "field private_key not found"},
	"spaces in path":       {"gcp: {credentials_file: ' /k.json'}", "gcp.credentials_file: is \" /k.json\", with spaces"},
	"service account":      {"gcp: {service_account: byok-platform}", "gcp.service_account: is \"byok-platform\"; give the platform's service account email"},
	"https endpoint":       {"gcp: {endpoint: 'https://cloudkms.googleapis.com'}", "gcp.endpoint: is \"https://cloudkms.googleapis.com\"; give the gRPC endpoint as host:port"},
	"endpoint no port":     {"gcp: {endpoint: cloudkms.googleapis.com}", "gcp.endpoint"},
	"endpoint port 0":      {"gcp: {endpoint: 'localhost:0'}", "gcp.endpoint"},
	"CA without endpoint":  {"gcp: {ca_file: /ca.pem}", "gcp.ca_file: is set without gcp.endpoint"},
	"timeout":              {"gcp: {timeout: 10ms}", "gcp.timeout: is 10ms; use at least 1s"},
	"negative timeout":     {"gcp: {timeout: -1s}", "gcp.timeout"},
	"block not a map":      {"gcp: default", "cannot unmarshal"},
	"credentials not text": {"gcp: {credentials_file: {type: service_account}}", "cannot unmarshal"},
}

func TestGCPErrors(t *testing.T) {
	for name, tt := range gcpErrorTests {
		t.Run(name, func(t *testing.T) {
			c, err := config.Parse([]byte(minimal + tt.block + "\n"))
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
