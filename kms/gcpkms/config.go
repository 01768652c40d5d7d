package gcpkms

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"google.golang.org/api/option"
)

// Defaults of [Config].
const (
	DefaultEndpoint   = "cloudkms.googleapis.com:443"
	DefaultTimeout    = 30 * time.Second
	DefaultMaxRetries = 3
)

// Config configures a [Provider] and [TestConfiguration]: the customer's
// settings (KeyName, Tenant) and the platform's own (CredentialsJSON,
// ClientOptions, …). It is plain data; a connector builds it from a
// tenant's stored settings and the platform's configuration. The package
// never reads files or environment variables itself, except that nil
// CredentialsJSON means Google's Application Default Credentials.
type Config struct {
	// KeyName is the customer's key: a crypto key resource name, whose
	// primary version Wrap follows, or a version's, which pins it;
	// required by TestConfiguration. A Provider wraps under whatever name
	// it is given.
	KeyName string
	// Tenant is the byok tenant id, bound into the additional
	// authenticated data of every Encrypt and Decrypt (see [AAD]).
	// Required; no newline.
	Tenant string
	// CredentialsJSON is the platform's service account key file (type
	// "service_account"), or an external_account file of workload identity
	// federation. Nil means the Application Default Credentials
	// (GOOGLE_APPLICATION_CREDENTIALS, gcloud's, the metadata server),
	// unless ClientOptions carry credentials themselves.
	CredentialsJSON []byte
	// ServiceAccount is the platform's service account email, which the
	// gcloud line of Test configuration names; empty means the
	// client_email of CredentialsJSON.
	ServiceAccount string
	// Endpoint is the Cloud KMS gRPC endpoint, "host:port": a regional
	// or Private Service Connect endpoint, an emulator. Empty means
	// [DefaultEndpoint].
	Endpoint string
	// RootCAs are the certificate authorities the endpoint's TLS
	// certificate must chain to; nil means the system's. (Tests pass
	// gcpkmsemu's CAPool.)
	RootCAs *x509.CertPool
	// ClientOptions are added last to the client's options: e.g.
	// option.WithAuthCredentials for credentials the connector built,
	// gRPC dial options. Test configuration probes Endpoint, so an
	// option.WithEndpoint here is not what it checks.
	ClientOptions []option.ClientOption
	// Timeout bounds each provider call, retries included. Zero means
	// [DefaultTimeout].
	Timeout time.Duration
	// MaxRetries is the number of retries of a call answered UNAVAILABLE,
	// RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED, with exponential backoff
	// from 100 ms. Zero means [DefaultMaxRetries]; negative disables
	// retries.
	MaxRetries int
	// Logger receives one debug line per KMS call and a warning per
	// failed one, never with secrets. Nil discards them.
	Logger *slog.Logger
}

// Validate checks c without any network call; each error names the
// setting and what to enter.
func (c Config) Validate() error {
	var errs []error
	if c.KeyName != "" {
		if _, err := ParseKeyName(c.KeyName); err != nil {
			errs = append(errs, err)
		}
	}
	if strings.TrimSpace(c.Tenant) == "" || strings.ContainsAny(c.Tenant, "\n\x00") {
		errs = append(errs, errors.New("gcpkms: Config.Tenant is empty or has a newline; set it to the byok tenant id, which every call's additional authenticated data carries"))
	}
	if c.CredentialsJSON != nil {
		if _, err := parseKeyFile(c.CredentialsJSON); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Endpoint != "" {
		host, port, err := net.SplitHostPort(c.Endpoint)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || strings.Contains(host, "/") || perr != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("gcpkms: Config.Endpoint %q is not host:port, e.g. %s", c.Endpoint, DefaultEndpoint))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("gcpkms: Config.Timeout %v is negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// keyFile is what byok reads of a credentials file: never the private key.
type keyFile struct {
	Type        string `json:"type"`
	ClientEmail string `json:"client_email"`
	KeyID       string `json:"private_key_id"`
	HasKey      bool   `json:"-"`
}

// parseKeyFile checks that b is a service account key file or an external
// account file, and returns its public facts. Its errors never quote b.
func parseKeyFile(b []byte) (keyFile, error) {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return keyFile{}, errors.New("gcpkms: the credentials are not JSON; paste the whole key file that IAM & Admin > Service accounts > Keys > Add key > JSON downloaded")
	}
	str := func(k string) string { s, _ := raw[k].(string); return s }
	kf := keyFile{Type: str("type"), ClientEmail: str("client_email"), KeyID: str("private_key_id")}
	kf.HasKey = strings.Contains(str("private_key"), "PRIVATE KEY")
	switch kf.Type {
	case "service_account":
		if kf.ClientEmail == "" || !kf.HasKey {
			return kf, errors.New("gcpkms: the service account key file lacks client_email or private_key; download a new JSON key (IAM & Admin > Service accounts > Keys > Add key)")
		}
	case "external_account", "impersonated_service_account":
	default:
		return kf, fmt.Errorf("gcpkms: the credentials file has type %q; byok takes a service account key file (\"service_account\") or a workload identity federation file (\"external_account\")", kf.Type)
	}
	return kf, nil
}

// serviceAccount returns the platform's account email, or "".
func (c Config) serviceAccount() string {
	if c.ServiceAccount != "" {
		return c.ServiceAccount
	}
	if kf, err := parseKeyFile(c.CredentialsJSON); err == nil {
		return kf.ClientEmail
	}
	return ""
}

func (c Config) endpoint() string {
	if c.Endpoint == "" {
		return DefaultEndpoint
	}
	return c.Endpoint
}

func (c Config) timeout() time.Duration {
	if c.Timeout == 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

func (c Config) retries() int {
	switch {
	case c.MaxRetries < 0:
		return 0
	case c.MaxRetries == 0:
		return DefaultMaxRetries
	}
	return c.MaxRetries
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}
