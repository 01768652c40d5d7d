package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openbyok/byok/config"
	"github.com/openbyok/byok/kvemu"
)

// misconfigCase is one way to get the production configuration wrong: a
// change to the platform's estate in the emulator and to the file, and
// what byok serve must say about it.
type misconfigCase struct {
	name string
	// estate changes the platform's side; it may be nil.
	estate func(t *testing.T, emu *kvemu.Emulator, p platformSide)
	// edit changes the configuration file's text; it may be nil.
	edit func(t *testing.T, text string, p platformSide) string
	// want are pieces of the error: what is wrong and the fix.
	want []string
}

var misconfigCases = []misconfigCase{
	{name: "a secret id as the platform key",
		edit: func(t *testing.T, text string, p platformSide) string {
			return strings.Replace(text, "/keys/platform-root", "/secrets/platform-root", 1)
		},
		want: []string{"platform_key.azure.key_id", "secret or certificate id", "must be a key"}},
	{name: "file and azure both set",
		edit: func(t *testing.T, text string, p platformSide) string {
			return strings.Replace(text, "platform_key:\n", "platform_key:\n  file: /tmp/platform.key\n", 1)
		},
		want: []string{"platform_key", "not several"}},
	{name: "a key without purge protection",
		estate: func(t *testing.T, emu *kvemu.Emulator, p platformSide) {
			mustDo(t, emu.CreateVault(kvemu.VaultConfig{Name: "loose-hsm", TenantID: p.dir, ManagedHSM: true}))
			_, err := emu.CreateKey("loose-hsm", "platform-root", kvemu.KeySpec{Type: "oct-HSM"})
			mustDo(t, err)
			_, err = emu.AssignRole("loose-hsm", kvemu.RoleAssignment{PrincipalID: p.mi.ObjectID, Role: "Managed HSM Crypto Service Encryption User"})
			mustDo(t, err)
		},
		edit: func(t *testing.T, text string, p platformSide) string {
			return strings.Replace(text, "contoso-byok.managedhsm", "loose-hsm.managedhsm", 1)
		},
		want: []string{"purge-protection", "az keyvault update-hsm"}},
	{name: "no role for the identity",
		estate: func(t *testing.T, emu *kvemu.Emulator, p platformSide) {
			as, err := emu.RoleAssignments("contoso-byok")
			mustDo(t, err)
			for _, a := range as {
				mustDo(t, emu.RemoveRole("contoso-byok", a.ID))
			}
		},
		want: []string{"access", "Managed HSM Crypto Service Encryption User"}},
	{name: "an HSM key of the wrong type",
		estate: func(t *testing.T, emu *kvemu.Emulator, p platformSide) {
			_, err := emu.CreateKey("contoso-byok", "small-root", kvemu.KeySpec{Type: "oct-HSM", Size: 128})
			mustDo(t, err)
		},
		edit: func(t *testing.T, text string, p platformSide) string {
			return strings.Replace(text, "/keys/platform-root", "/keys/small-root", 1)
		},
		want: []string{"key-type", "256"}},
	{name: "a disabled key",
		estate: func(t *testing.T, emu *kvemu.Emulator, p platformSide) {
			mustDo(t, emu.DisableKey("contoso-byok", "platform-root"))
		},
		want: []string{"key-enabled", "enable"}},
	{name: "a managed identity not assigned to the host",
		edit: func(t *testing.T, text string, p platformSide) string {
			return strings.ReplaceAll(text, p.mi.ClientID, "7f6e5d4c-3b2a-4190-8877-665544332211")
		},
		want: []string{"is not assigned to the platform's host", "Identity blade", "platform_key.azure.credential"}},
	{name: "a federated credential with the wrong issuer",
		estate: func(t *testing.T, emu *kvemu.Emulator, p platformSide) {
			p.retrust(t, emu, func(fc *kvemu.FederatedCredential) {
				fc.Issuer = "https://login.microsoftonline.com/00000000-1111-2222-3333-444444444444/v2.0"
			})
		},
		want: []string{"federated credential does not match", "issuer", "az ad app federated-credential create"}},
	{name: "a federated credential with the wrong subject",
		estate: func(t *testing.T, emu *kvemu.Emulator, p platformSide) {
			p.retrust(t, emu, func(fc *kvemu.FederatedCredential) { fc.Subject = "00000000-aaaa-bbbb-cccc-dddddddddddd" })
		},
		want: []string{"federated credential does not match", p0Subject, "az ad app federated-credential create"}},
	{name: "a federated credential with the wrong audience",
		estate: func(t *testing.T, emu *kvemu.Emulator, p platformSide) {
			p.retrust(t, emu, func(fc *kvemu.FederatedCredential) { fc.Audiences = []string{"api://SomethingElse"} })
		},
		want: []string{"federated credential does not match", "api://AzureADTokenExchange"}},
	{name: "the client secret variable unset",
		edit: func(t *testing.T, text string, p platformSide) string {
			return strings.Replace(text, "  credential:\n    managed_identity: {client_id: "+p.mi.ClientID+"}\n  managed_identity",
				"  credential:\n    client_secret: {env: BYOK_AZURE_CLIENT_SECRET}\n  managed_identity", 1)
		},
		want: []string{"azure.credential.client_secret.env", "BYOK_AZURE_CLIENT_SECRET", "empty or unset"}},
	{name: "a missing certificate file",
		edit: func(t *testing.T, text string, p platformSide) string {
			return strings.Replace(text, "  credential:\n    managed_identity: {client_id: "+p.mi.ClientID+"}\n  managed_identity",
				"  credential:\n    certificate: {file: /nonexistent/app.pem}\n  managed_identity", 1)
		},
		want: []string{"/nonexistent/app.pem", "does not exist"}},
	{name: "an expired certificate file",
		edit: func(t *testing.T, text string, p platformSide) string {
			return strings.Replace(text, "  credential:\n    managed_identity: {client_id: "+p.mi.ClientID+"}\n  managed_identity",
				"  credential:\n    certificate: {file: "+p.expiredCert+"}\n  managed_identity", 1)
		},
		want: []string{"expired"}},
	{name: "a workload identity token file that is missing",
		edit: func(t *testing.T, text string, p platformSide) string {
			return strings.Replace(text, "      managed_identity: {client_id: "+p.mi.ClientID+"}\nazure:",
				"      workload_identity: {client_id: "+p.app.ClientID+", token_file: /nonexistent/token}\nazure:", 1)
		},
		want: []string{"platform_key.azure.credential.workload_identity.token_file", "/nonexistent/token", "azure.workload.identity/use"}},
}

// p0Subject is a placeholder the wrong-subject case checks for: the
// remedy names the identity's real object id, which only the case knows.
const p0Subject = "subject"

// mustDo fails t on err.
func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// retrust replaces the app's federated credential of the managed identity
// with a changed one.
func (p platformSide) retrust(t *testing.T, emu *kvemu.Emulator, change func(*kvemu.FederatedCredential)) {
	t.Helper()
	other, err := emu.CreateApp(kvemu.App{TenantID: p.dir, MultiTenant: true, ClientID: "", DisplayName: "unused"})
	mustDo(t, err)
	fc, err := emu.TrustManagedIdentity(other.ClientID, p.mi.ClientID) // the right credential, to change
	mustDo(t, err)
	change(&fc)
	mustDo(t, emu.AddFederatedCredential(p.misApp, fc))
}

// TestServeRefusesMisconfiguration starts byok serve's wiring with one
// mistake at a time in the production configuration: each refuses to
// start with an error that names what is wrong and the fix, before any
// store is created.
func TestServeRefusesMisconfiguration(t *testing.T) {
	clearIdentityEnv(t)
	for _, mc := range misconfigCases {
		t.Run(mc.name, func(t *testing.T) {
			emu, err := kvemu.Start(kvemu.Options{})
			mustDo(t, err)
			defer emu.Close()
			p := newPlatformSide(t, emu)
			// An app whose federated credential the wrong-credential cases
			// set, so the others keep the right one.
			mis, err := emu.CreateApp(kvemu.App{TenantID: p.dir, MultiTenant: true, DisplayName: "misconfigured"})
			mustDo(t, err)
			p.misApp = mis.ClientID
			p.expiredCert = writeExpiredCert(t, emu, p.app.ClientID)
			if mc.estate != nil {
				mc.estate(t, emu, p)
			}
			dir := t.TempDir()
			db := filepath.Join(dir, "byok.db")
			text := fmt.Sprintf(productionConfig, db, p.dir, p.mi.ClientID, p.app.ClientID)
			if strings.HasPrefix(mc.name, "a federated credential") {
				text = strings.Replace(text, "  client_id: "+p.app.ClientID, "  client_id: "+p.misApp, 1)
			}
			if mc.edit != nil {
				text = mc.edit(t, text, p)
			}
			err = startWith(t, emu, text)
			if err == nil {
				t.Fatal("byok serve started")
			}
			for _, w := range mc.want {
				if w == p0Subject {
					w = p.mi.ObjectID
				}
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q:\n%v", w, err)
				}
			}
			if _, statErr := os.Stat(db); !os.IsNotExist(statErr) {
				t.Errorf("a store was created although byok did not start: %v", statErr)
			}
			t.Logf("%s → %v", mc.name, err)
		})
	}
}

// startWith runs byok serve's start-up on the configuration text: parse,
// validate, open. It returns the first error.
func startWith(t *testing.T, emu *kvemu.Emulator, text string) error {
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	a, err := openApp(context.Background(), cfg, appOptions{azureTransport: emu.HTTPClient(), getenv: func(string) string { return "" }}, slog.New(slog.DiscardHandler))
	if err == nil {
		a.close()
	}
	return err
}

// writeExpiredCert writes a PEM file (mode 0600) with a certificate of
// the app that expired yesterday and its private key.
func writeExpiredCert(t *testing.T, emu *kvemu.Emulator, clientID string) string {
	t.Helper()
	cert, key, err := emu.CreateCertificate(clientID, time.Now().Add(-24*time.Hour))
	mustDo(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	mustDo(t, err)
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	b = append(b, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	f := filepath.Join(t.TempDir(), "expired.pem")
	mustDo(t, os.WriteFile(f, b, 0o600))
	return f
}
