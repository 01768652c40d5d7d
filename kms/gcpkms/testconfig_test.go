package gcpkms

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/openbyok/byok/gcpkmsemu"
)

// failureTests is the failure matrix of Test configuration: each case
// breaks one thing and expects the check that names it, with a remedy
// that names the fix.
var failureTests = []struct {
	name   string
	setup  func(t *testing.T, e *env, cfg *Config)
	check  string
	status Status
	remedy string // a substring of the remedy
}{
	{"malformed resource name", func(t *testing.T, e *env, cfg *Config) { cfg.KeyName = ring }, CheckKeyName, Fail, "Copy resource name"},
	{"pinned version", func(t *testing.T, e *env, cfg *Config) { cfg.KeyName = keyA + "/cryptoKeyVersions/1" }, CheckKeyName, Warn, "without /cryptoKeyVersions/N (" + keyA + ")"},
	{"no tenant", func(t *testing.T, e *env, cfg *Config) { cfg.Tenant = "" }, CheckSettings, Fail, "correct the settings"},
	{"malformed key file", func(t *testing.T, e *env, cfg *Config) { cfg.CredentialsJSON = []byte(`{"type":"service_account"}`) }, CheckSettings, Fail,
		"gcloud iam service-accounts keys create key.json"},
	{"key file not JSON", func(t *testing.T, e *env, cfg *Config) { cfg.CredentialsJSON = []byte("-----BEGIN PRIVATE KEY-----") }, CheckSettings, Fail,
		"Add key > Create new key > JSON"},
	{"credentials missing", func(t *testing.T, e *env, cfg *Config) {
		t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
		t.Setenv("HOME", t.TempDir())
		t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
		// As on Google Cloud with no service account attached: a metadata
		// server that gives no token (set here, so the test is the same
		// on any host).
		t.Setenv("GCE_METADATA_HOST", closedPort(t))
		cfg.CredentialsJSON = nil
	}, CheckCredentials, Fail, "set GOOGLE_APPLICATION_CREDENTIALS"},
	{"endpoint unreachable", func(t *testing.T, e *env, cfg *Config) { cfg.Endpoint = closedPort(t) }, CheckEndpoint, Fail, "allow outbound HTTPS (TCP 443)"},
	{"endpoint does not resolve", func(t *testing.T, e *env, cfg *Config) { cfg.Endpoint = "cloudkms.invalid:443" }, CheckEndpoint, Fail, "DNS"},
	{"TLS untrusted", func(t *testing.T, e *env, cfg *Config) { cfg.RootCAs = nil }, CheckTLS, Fail, "TLS-inspecting proxy"},
	{"service account disabled", func(t *testing.T, e *env, cfg *Config) { must(t, e.emu.SetServiceAccountDisabled(e.platform, true)) }, CheckCredentials, Fail,
		"gcloud iam service-accounts enable byok-platform@byok-platform.iam.gserviceaccount.com --project byok-platform"},
	{"service account key disabled", func(t *testing.T, e *env, cfg *Config) {
		var kf struct {
			ID string `json:"private_key_id"`
		}
		must(t, json.Unmarshal(e.keyFile, &kf))
		must(t, e.emu.SetServiceAccountKeyDisabled(e.platform, kf.ID, true))
	}, CheckCredentials, Fail, "gcloud iam service-accounts keys create key.json --iam-account byok-platform@"},
	{"encrypter/decrypter role missing", func(t *testing.T, e *env, cfg *Config) {
		must(t, e.emu.RemoveBinding(keyA, roleED, "serviceAccount:"+e.platform))
	}, CheckPermissions, Fail, "gcloud kms keys add-iam-policy-binding tenant-a --keyring byok --location global --project customer " +
		"--member serviceAccount:byok-platform@byok-platform.iam.gserviceaccount.com --role roles/cloudkms.cryptoKeyEncrypterDecrypter"},
	{"viewer role missing", func(t *testing.T, e *env, cfg *Config) {
		must(t, e.emu.RemoveBinding(keyA, roleVwr, "serviceAccount:"+e.platform))
	}, CheckPermissions, Fail,
		"--member serviceAccount:byok-platform@byok-platform.iam.gserviceaccount.com --role roles/cloudkms.viewer"},
	{"key does not exist", func(t *testing.T, e *env, cfg *Config) { cfg.KeyName = ring + "/cryptoKeys/tenant-z" }, CheckPermissions, Fail, "gcloud kms keys list --keyring byok"},
	{"purpose MAC", func(t *testing.T, e *env, cfg *Config) {
		cfg.KeyName = e.createKey(t, "mac", kmspb.CryptoKey_MAC, kmspb.ProtectionLevel_SOFTWARE)
	}, CheckPurpose, Fail, "--purpose encryption"},
	{"primary version disabled", func(t *testing.T, e *env, cfg *Config) {
		e.setState(t, keyA+"/cryptoKeyVersions/1", kmspb.CryptoKeyVersion_DISABLED)
	}, CheckVersion, Fail,
		"gcloud kms keys versions enable 1 --key tenant-a --keyring byok --location global --project customer"},
	{"primary version scheduled for destruction", func(t *testing.T, e *env, cfg *Config) { e.destroy(t, keyA+"/cryptoKeyVersions/1") }, CheckVersion, Fail,
		"gcloud kms keys versions restore 1 --key tenant-a"},
	{"no rotation period", func(t *testing.T, e *env, cfg *Config) {}, CheckRotation, Warn, "--rotation-period 90d"},
	{"round trip refused", func(t *testing.T, e *env, cfg *Config) {
		e.emu.InjectFault(gcpkmsemu.Fault{Methods: []string{"Decrypt"}, Code: codes.Unavailable, Count: 100})
	}, CheckRoundTrip, Fail, "retry"},
}

func TestConfigurationFailures(t *testing.T) {
	for _, tt := range failureTests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := e.config()
			tt.setup(t, e, &cfg)
			r := TestConfiguration(context.Background(), cfg)
			c, ok := r.Check(tt.check)
			if !ok || c.Status != tt.status || !strings.Contains(c.Remedy, tt.remedy) {
				t.Errorf("check %s = %+v, want %s with a remedy containing %q\n%s", tt.check, c, tt.status, tt.remedy, dump(r))
			}
			if tt.status == Fail && r.OK() {
				t.Error("the report is OK with a failed check")
			}
			if strings.Contains(dump(r), "PRIVATE KEY") {
				t.Error("the report shows key material")
			}
		})
	}
}

// TestConfigurationPasses checks a good configuration end to end: an HSM
// key with a rotation period, every check passing.
func TestConfigurationPasses(t *testing.T) {
	e := newEnv(t)
	hsm := e.createKey(t, "tenant-hsm", kmspb.CryptoKey_ENCRYPT_DECRYPT, kmspb.ProtectionLevel_HSM)
	_, err := e.admin.UpdateCryptoKey(context.Background(), &kmspb.UpdateCryptoKeyRequest{
		CryptoKey: &kmspb.CryptoKey{Name: hsm, RotationSchedule: &kmspb.CryptoKey_RotationPeriod{RotationPeriod: durationpb.New(90 * 24 * time.Hour)},
			NextRotationTime: timestamppb.New(e.emu.Now().Add(30 * 24 * time.Hour))},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"rotation_period", "next_rotation_time"}}})
	must(t, err)
	cfg := e.config()
	cfg.KeyName = hsm
	r := TestConfiguration(context.Background(), cfg)
	for _, c := range r.Checks {
		if c.Status != Pass {
			t.Errorf("check %s: %s (%s)", c.Name, c.Status, c.Reason)
		}
	}
	if c, _ := r.Check(CheckProtection); c.Value != "HSM" {
		t.Errorf("protection level shown as %q", c.Value)
	}
	if c, _ := r.Check(CheckRotation); c.Value != "2160h0m0s" {
		t.Errorf("rotation shown as %q", c.Value)
	}
	if !r.OK() || r.ServiceAccount != e.platform || len(r.Checks) != 13 {
		t.Errorf("report:\n%s", dump(r))
	}
	// The round trip used a key version; a software key shows SOFTWARE.
	cfg.KeyName = keyA
	if c, _ := TestConfiguration(context.Background(), cfg).Check(CheckProtection); c.Value != "SOFTWARE" || c.Status != Pass {
		t.Errorf("software key: %+v", c)
	}
}

func dump(r Report) string {
	var b strings.Builder
	for _, c := range r.Checks {
		b.WriteString("  " + c.Name + " " + string(c.Status) + " [" + c.Value + "] " + c.Reason + " => " + c.Remedy + "\n")
	}
	return b.String()
}
