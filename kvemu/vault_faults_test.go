package kvemu

import (
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// TestVaultSDKFaults checks that injected 5xx and resets meet the SDK's
// retry policy, and that an offline vault is a transport error.
func TestVaultSDKFaults(t *testing.T) {
	env := newVaultEnv(t)
	k, err := env.emu.CreateKey("contoso", "cmk", KeySpec{})
	if err != nil {
		t.Fatal(err)
	}
	c := env.keys(t, contosoURL) // three fast retries
	if err := wrapOp(c, "cmk", k.Version); err != nil {
		t.Fatal(err)
	}
	env.emu.ResetCalls()
	if err := env.emu.InjectFault("contoso", Fault{Status: 503, Count: 2}); err != nil {
		t.Fatal(err)
	}
	if err := wrapOp(c, "cmk", k.Version); err != nil {
		t.Fatalf("two 503s then success, with three retries: %v", err)
	}
	if n := env.emu.CallCount("contoso", OpWrapKey, http.StatusServiceUnavailable); n != 2 {
		t.Errorf("503s counted %d, want 2", n)
	}
	if err := env.emu.InjectFault("contoso", Fault{Reset: true, Count: 1, Ops: []Op{OpUnwrapKey}}); err != nil {
		t.Fatal(err)
	}
	w, err := c.WrapKey(ctx, "cmk", k.Version, azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: share32}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := unwrapOp(c, "cmk", k.Version, w.Result); err != nil {
		t.Fatalf("a reset then success: %v", err)
	}
	if n := env.emu.CallCount("contoso", OpUnwrapKey, 0) - env.emu.CallCount("contoso", OpUnwrapKey, 200); n != 1 {
		t.Errorf("dropped unwraps counted %d, want 1", n)
	}
	// Five 500s outlast three retries: the SDK returns the last one.
	if err := env.emu.InjectFault("contoso", Fault{Status: 500, Count: 5}); err != nil {
		t.Fatal(err)
	}
	respErrMsg(t, wrapOp(c, "cmk", k.Version), 500, "InternalServerError")
	if err := env.emu.ClearFaults("contoso"); err != nil {
		t.Fatal(err)
	}
	if err := env.emu.SetOffline("contoso", true); err != nil {
		t.Fatal(err)
	}
	err = wrapOp(c, "cmk", k.Version)
	var re *azcore.ResponseError
	if err == nil || errors.As(err, &re) {
		t.Fatalf("offline vault: %v, want a transport error", err)
	}
	if err := env.emu.SetOffline("contoso", false); err != nil {
		t.Fatal(err)
	}
	if err := wrapOp(c, "cmk", k.Version); err != nil {
		t.Fatalf("back online: %v", err)
	}
}

// TestVaultSDKRevocation walks the customer's revocation levers (role
// removed, key disabled, key deleted) and their undoing, through one
// long-lived client as byok holds it.
func TestVaultSDKRevocation(t *testing.T) {
	env := newVaultEnv(t)
	k, err := env.emu.CreateKey("contoso", "cmk", KeySpec{})
	if err != nil {
		t.Fatal(err)
	}
	_, roleID, c := env.withRole(t, "contoso", contosoURL, RoleAssignment{Role: "Key Vault Crypto Service Encryption User"})
	w, err := c.WrapKey(ctx, "cmk", k.Version, azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: share32}, nil)
	if err != nil {
		t.Fatal(err)
	}
	unwrap := func() error { return unwrapOp(c, "cmk", k.Version, w.Result) }
	levers := []struct {
		name         string
		revoke, undo func() error
		status       int
		code, inner  string
	}{
		{"role revoked", func() error { return env.emu.RevokeRole("contoso", roleID) }, func() error { return env.emu.RestoreRole("contoso", roleID) }, 403, "Forbidden", "ForbiddenByRbac"},
		{"key disabled", func() error { return env.emu.DisableKey("contoso", "cmk") }, func() error { return env.emu.EnableKey("contoso", "cmk") }, 403, "Forbidden", "KeyDisabled"},
		{"key deleted", func() error { return env.emu.DeleteKey("contoso", "cmk") }, func() error { return env.emu.RecoverKey("contoso", "cmk") }, 404, "KeyNotFound", ""},
	}
	for _, l := range levers {
		t.Run(l.name, func(t *testing.T) {
			if err := l.revoke(); err != nil {
				t.Fatal(err)
			}
			if inner, _ := respErrMsg(t, unwrap(), l.status, l.code); inner != l.inner {
				t.Errorf("inner %q, want %q", inner, l.inner)
			}
			if err := l.undo(); err != nil {
				t.Fatal(err)
			}
			if err := unwrap(); err != nil {
				t.Fatalf("after undoing: %v", err)
			}
		})
	}
}

// TestVaultSDKSurface exercises the rest of the keys API through azkeys:
// paging, versions, update, rotation and its policy, delete/recover/purge,
// backup/restore, sign/verify, random bytes, and every api-version.
func TestVaultSDKSurface(t *testing.T) {
	env := newVaultEnv(t)
	if err := env.emu.CreateVault(VaultConfig{Name: "scratch", TenantID: env.tenant}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.emu.AssignRole("scratch", RoleAssignment{PrincipalID: env.app.ObjectID, Role: "Key Vault Administrator"}); err != nil {
		t.Fatal(err)
	}
	c := env.keys(t, "https://scratch.vault.azure.net")
	for i := range 27 {
		if _, err := env.emu.CreateKey("scratch", "k"+string(rune('a'+i%26))+strings.Repeat("x", i/26), KeySpec{Type: "EC"}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for pager := c.NewListKeyPropertiesPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	if n != 27 {
		t.Fatalf("listed %d keys, want 27", n)
	}
	created, err := c.CreateKey(ctx, "cmk", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM), KeySize: to.Ptr[int32](3072),
		KeyOps: []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationSign), to.Ptr(azkeys.KeyOperationVerify), to.Ptr(azkeys.KeyOperationWrapKey), to.Ptr(azkeys.KeyOperationUnwrapKey)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *created.Key.Kty != azkeys.KeyTypeRSAHSM || len(created.Key.N) != 384 || *created.Attributes.RecoveryLevel != "Recoverable+Purgeable" {
		t.Fatalf("created %+v", created.Key)
	}
	upd, err := c.UpdateKey(ctx, "cmk", "", azkeys.UpdateKeyParameters{Tags: map[string]*string{"owner": to.Ptr("byok")}}, nil)
	if err != nil || *upd.Tags["owner"] != "byok" {
		t.Fatalf("UpdateKey %v", err)
	}
	if _, err := c.UpdateKeyRotationPolicy(ctx, "cmk", azkeys.KeyRotationPolicy{
		Attributes: &azkeys.KeyRotationPolicyAttributes{ExpiryTime: to.Ptr("P90D")},
		LifetimeActions: []*azkeys.LifetimeAction{{Action: &azkeys.LifetimeActionType{Type: to.Ptr(azkeys.KeyRotationPolicyActionRotate)},
			Trigger: &azkeys.LifetimeActionTrigger{TimeBeforeExpiry: to.Ptr("P30D")}}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	pol, err := c.GetKeyRotationPolicy(ctx, "cmk", nil)
	if err != nil || *pol.Attributes.ExpiryTime != "P90D" || *pol.LifetimeActions[0].Trigger.TimeBeforeExpiry != "P30D" {
		t.Fatalf("GetKeyRotationPolicy %v", err)
	}
	rot, err := c.RotateKey(ctx, "cmk", nil)
	if err != nil || rot.Key.KID.Version() == created.Key.KID.Version() || rot.Attributes.Expires == nil {
		t.Fatalf("RotateKey %v", err)
	}
	versions := 0
	for pager := c.NewListKeyPropertiesVersionsPager("cmk", nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		versions += len(page.Value)
	}
	if versions != 2 {
		t.Errorf("%d versions, want 2", versions)
	}
	digest := make([]byte, 32)
	sig, err := c.Sign(ctx, "cmk", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ver, err := c.Verify(ctx, "cmk", "", azkeys.VerifyParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Digest: digest, Signature: sig.Result}, nil)
	if err != nil || !*ver.Value {
		t.Fatalf("Verify %v", err)
	}
	backup, err := c.BackupKey(ctx, "cmk", nil)
	if err != nil {
		t.Fatal(err)
	}
	del, err := c.DeleteKey(ctx, "cmk", nil)
	if err != nil || del.RecoveryID == nil || del.ScheduledPurgeDate == nil {
		t.Fatalf("DeleteKey %v", err)
	}
	if _, err := c.GetDeletedKey(ctx, "cmk", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RecoverDeletedKey(ctx, "cmk", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteKey(ctx, "cmk", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PurgeDeletedKey(ctx, "cmk", nil); err != nil {
		t.Fatalf("PurgeDeletedKey: %v", err)
	}
	restored, err := c.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: backup.Value}, nil)
	if err != nil || restored.Key.KID.Version() != rot.Key.KID.Version() {
		t.Fatalf("RestoreKey %v", err)
	}
	rnd, err := c.GetRandomBytes(ctx, azkeys.GetRandomBytesParameters{Count: to.Ptr[int32](24)}, nil)
	if err != nil || len(rnd.Value) != 24 {
		t.Fatalf("GetRandomBytes %v", err)
	}
	for _, v := range []string{"7.4", "7.5", "7.6", "2025-07-01"} {
		cv := env.keysWith(t, "https://scratch.vault.azure.net", env.cred(t), 0, v)
		if _, err := cv.GetKey(ctx, "cmk", "", nil); err != nil {
			t.Errorf("api-version %s: %v", v, err)
		}
	}
}

// TestVaultSDKManagedIdentity reaches a vault with the App Service managed
// identity, and a Managed HSM with a certificate credential.
func TestVaultSDKManagedIdentity(t *testing.T) {
	env := newVaultEnv(t)
	// User-assigned, with a fresh client id: MSAL caches managed identity
	// tokens process-wide, and another test's emulator signed those.
	mi, err := env.emu.CreateManagedIdentity(ManagedIdentity{Name: "web", TenantID: env.tenant})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.emu.AssignRole("contoso", RoleAssignment{PrincipalID: mi.ObjectID, Role: "Key Vault Crypto Service Encryption User"}); err != nil {
		t.Fatal(err)
	}
	k, err := env.emu.CreateKey("contoso", "cmk", KeySpec{})
	if err != nil {
		t.Fatal(err)
	}
	endpoint, header := env.emu.ManagedIdentityEnv()
	t.Setenv("IDENTITY_ENDPOINT", endpoint)
	t.Setenv("IDENTITY_HEADER", header)
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: env.clientOptions(0), ID: azidentity.ClientID(mi.ClientID)})
	if err != nil {
		t.Fatal(err)
	}
	c := env.keysWith(t, contosoURL, cred, 0, "")
	if err := wrapOp(c, "cmk", k.Version); err != nil {
		t.Fatalf("WrapKey as managed identity: %v", err)
	}
	var found bool
	for _, call := range env.emu.Calls() {
		found = found || call.Op == OpWrapKey && call.Principal == mi.ObjectID && call.Status == 200
	}
	if !found {
		t.Errorf("no successful WrapKey counted for the identity's oid %s: %+v", mi.ObjectID, env.emu.Calls())
	}

	if err := env.emu.CreateVault(VaultConfig{Name: "hsm1", TenantID: env.tenant, ManagedHSM: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.emu.AssignRole("hsm1", RoleAssignment{PrincipalID: env.app.ObjectID, Role: "Managed HSM Crypto User"}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.emu.CreateKey("hsm1", "cmk", KeySpec{Type: "RSA-HSM"}); err != nil {
		t.Fatal(err)
	}
	cert, key, err := env.emu.CreateCertificate(env.app.ClientID, env.clk.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	certCred, err := azidentity.NewClientCertificateCredential(env.tenant, env.app.ClientID, []*x509.Certificate{cert}, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: env.clientOptions(0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := wrapOp(env.keysWith(t, "https://hsm1.managedhsm.azure.net", certCred, 0, ""), "cmk", ""); err != nil {
		t.Fatalf("WrapKey on a Managed HSM with a certificate: %v", err)
	}
}

// TestVaultSDKConcurrent shares one client between goroutines; run with
// -race.
func TestVaultSDKConcurrent(t *testing.T) {
	env := newVaultEnv(t)
	k, err := env.emu.CreateKey("contoso", "cmk", KeySpec{})
	if err != nil {
		t.Fatal(err)
	}
	c := env.keys(t, contosoURL)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 5 {
				w, err := c.WrapKey(ctx, "cmk", k.Version, azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: share32}, nil)
				if err == nil {
					err = unwrapOp(c, "cmk", k.Version, w.Result)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := env.emu.CallCount("contoso", OpUnwrapKey, 200); n != 40 {
		t.Errorf("%d unwraps counted, want 40", n)
	}
}

// TestVaultSDKPrivateLink reaches a firewalled vault through its private
// endpoint name. The challenge there names https://vaultcore.azure.net; the
// caller's credential asks for a vault.azure.net token, which every vault
// name accepts.
func TestVaultSDKPrivateLink(t *testing.T) {
	env := newVaultEnv(t)
	if _, err := env.emu.CreateKey("contoso", "cmk", KeySpec{}); err != nil {
		t.Fatal(err)
	}
	if err := env.emu.SetNetwork("contoso", NetworkRules{DefaultAction: "Deny", PrivateEndpoint: true}); err != nil {
		t.Fatal(err)
	}
	cred := tenantOverride{inner: env.cred(t), scope: "https://vault.azure.net/.default"}
	public := env.keysWith(t, contosoURL, cred, -1, "")
	if inner, _ := respErrMsg(t, wrapOp(public, "cmk", ""), 403, "Forbidden"); inner != "ForbiddenByFirewall" {
		t.Errorf("public name: inner %q", inner)
	}
	private := env.keysWith(t, "https://contoso.privatelink.vaultcore.azure.net", cred, -1, "")
	w, err := private.WrapKey(ctx, "cmk", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: share32}, nil)
	if err != nil {
		t.Fatalf("private endpoint: %v", err)
	}
	if !strings.HasPrefix(string(*w.KID), "https://contoso.privatelink.vaultcore.azure.net/keys/cmk/") {
		t.Errorf("kid %s does not name the host the client used", *w.KID)
	}
}
