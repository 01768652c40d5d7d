package kvemu

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// vclock is a settable clock shared by an emulator and a vault test.
type vclock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *vclock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *vclock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// vaultEnv is an emulator with one tenant, one app with a secret, and the
// vault "contoso" in that tenant where the app is Key Vault Crypto Officer.
type vaultEnv struct {
	emu    *Emulator
	clk    *vclock
	tenant string
	app    App
	secret string
}

const contosoURL = "https://contoso.vault.azure.net"

func newVaultEnv(t testing.TB) *vaultEnv {
	t.Helper()
	clk := &vclock{t: time.Now().UTC().Truncate(time.Second)}
	emu, err := Start(Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	ten, err := emu.CreateTenant(Tenant{Name: "contoso"})
	if err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	app, err := emu.CreateApp(App{TenantID: ten.ID, DisplayName: "platform"})
	if err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	sec, err := emu.AddSecret(app.ClientID, Secret{})
	if err != nil {
		t.Fatalf("AddSecret: %v", err)
	}
	if err := emu.CreateVault(VaultConfig{Name: "contoso", TenantID: ten.ID, PurgeProtection: true}); err != nil {
		t.Fatalf("CreateVault: %v", err)
	}
	if _, err := emu.AssignRole("contoso", RoleAssignment{PrincipalID: app.ObjectID, Role: "Key Vault Crypto Officer"}); err != nil {
		t.Fatalf("AssignRole: %v", err)
	}
	return &vaultEnv{emu: emu, clk: clk, tenant: ten.ID, app: app, secret: sec.Value}
}

// clientOptions routes the SDK to the emulator; retries are fast and
// bounded so fault tests do not wait on the SDK's default back-off.
func (e *vaultEnv) clientOptions(retries int32) azcore.ClientOptions {
	return azcore.ClientOptions{
		Transport: e.emu.HTTPClient(),
		Retry:     policy.RetryOptions{MaxRetries: retries, RetryDelay: time.Millisecond, MaxRetryDelay: 2 * time.Millisecond},
	}
}

// cred returns a new ClientSecretCredential of the env's app.
func (e *vaultEnv) cred(t testing.TB) azcore.TokenCredential {
	t.Helper()
	c, err := azidentity.NewClientSecretCredential(e.tenant, e.app.ClientID, e.secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: e.clientOptions(0)})
	if err != nil {
		t.Fatalf("NewClientSecretCredential: %v", err)
	}
	return c
}

// keys returns a new azkeys client of vaultURL with a fresh credential.
func (e *vaultEnv) keys(t testing.TB, vaultURL string) *azkeys.Client {
	t.Helper()
	return e.keysWith(t, vaultURL, e.cred(t), 3, "")
}

func (e *vaultEnv) keysWith(t testing.TB, vaultURL string, cred azcore.TokenCredential, retries int32, apiVersion string) *azkeys.Client {
	t.Helper()
	o := e.clientOptions(retries)
	o.APIVersion = apiVersion
	c, err := azkeys.NewClient(vaultURL, cred, &azkeys.ClientOptions{ClientOptions: o})
	if err != nil {
		t.Fatalf("azkeys.NewClient: %v", err)
	}
	return c
}

// respErrMsg asserts err is an *azcore.ResponseError with status and code
// (ErrorCode) and returns the inner error code of its body ("" if none) and
// its message.
func respErrMsg(t testing.TB, err error, status int, code string) (inner, msg string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not an *azcore.ResponseError", err)
	}
	if re.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("got %d %q, want %d %q (%v)", re.StatusCode, re.ErrorCode, status, code, err)
	}
	body, _ := io.ReadAll(re.RawResponse.Body)
	var env struct {
		Error struct {
			Message    string `json:"message"`
			InnerError *struct {
				Code string `json:"code"`
			} `json:"innererror"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("error body %q is not Key Vault's envelope: %v", body, err)
	}
	if env.Error.Message == "" {
		t.Fatalf("error body %q has no message", body)
	}
	if env.Error.InnerError != nil {
		inner = env.Error.InnerError.Code
	}
	return inner, env.Error.Message
}

var ctx = context.Background()

func TestVaultSDKWrapUnwrapRoundTrip(t *testing.T) {
	env := newVaultEnv(t)
	c := env.keys(t, contosoURL)
	created, err := c.CreateKey(ctx, "cmk", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr[int32](2048)}, nil)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	kid := string(*created.Key.KID)
	if !strings.HasPrefix(kid, contosoURL+"/keys/cmk/") || len(created.Key.KID.Version()) != 32 {
		t.Fatalf("kid = %s, want %s/keys/cmk/<32 hex>", kid, contosoURL)
	}
	if got := *created.Attributes.RecoveryLevel; got != "Recoverable" {
		t.Errorf("recoveryLevel = %s, want Recoverable (purge protection, 90 days)", got)
	}
	share := sha256.Sum256([]byte("customer share"))
	for _, alg := range []azkeys.EncryptionAlgorithm{azkeys.EncryptionAlgorithmRSAOAEP256, azkeys.EncryptionAlgorithmRSAOAEP, azkeys.EncryptionAlgorithmRSA15} {
		w, err := c.WrapKey(ctx, "cmk", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: share[:]}, nil)
		if err != nil {
			t.Fatalf("WrapKey %s: %v", alg, err)
		}
		if string(*w.KID) != kid {
			t.Errorf("WrapKey %s kid = %s, want the versioned %s", alg, *w.KID, kid)
		}
		u, err := c.UnwrapKey(ctx, "cmk", w.KID.Version(), azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: w.Result}, nil)
		if err != nil {
			t.Fatalf("UnwrapKey %s: %v", alg, err)
		}
		if string(u.Result) != string(share[:]) {
			t.Fatalf("UnwrapKey %s returned other bytes", alg)
		}
	}
	// One challenge round trip for the client's first request, none after.
	if n := env.emu.CallCount("contoso", OpCreateKey, http.StatusUnauthorized); n != 1 {
		t.Errorf("challenges on CreateKey = %d, want 1", n)
	}
	if n := env.emu.CallCount("contoso", OpWrapKey, http.StatusUnauthorized); n != 0 {
		t.Errorf("challenges on WrapKey = %d, want 0", n)
	}
	if n := env.emu.CallCount("contoso", OpUnwrapKey, http.StatusOK); n != 3 {
		t.Errorf("UnwrapKey 200 count = %d, want 3", n)
	}
}
