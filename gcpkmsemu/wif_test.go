package gcpkmsemu_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/auth/credentials"
	kms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/openbyok/byok/gcpkmsemu"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

const (
	issuer  = "https://oidc.platform.example"
	subject = "system:serviceaccount:byok:api"
)

// signJWT signs claims with key as an OIDC issuer would (RS256).
func signJWT(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "k1"})
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	d := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// federatedClient writes the subject token and a credential configuration
// file, and returns a client built from it with the auth library's
// documented DetectOptions.
func federatedClient(t *testing.T, f *fixture, audience, token, impersonate string) *kms.KeyManagementClient {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	creds, err := credentials.DetectDefault(&credentials.DetectOptions{
		CredentialsJSON: f.emu.ExternalAccountConfig(audience, tokenFile, impersonate),
		Scopes:          []string{gcpkmsemu.ScopeCloudPlatform},
		Client:          f.emu.HTTPClient(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, option.WithEndpoint(f.emu.Addr()),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(f.emu.TransportCredentials())),
		option.WithAuthCredentials(creds))
}

func TestWorkloadIdentityFederation(t *testing.T) {
	f := newFixture(t)
	testKeyFile(t, f.emu, f.noSA) // makes the test keys
	key := testRSAKey()
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	audience, err := f.emu.AddWorkloadIdentityProvider(gcpkmsemu.WorkloadIdentityProvider{
		Project: "platform", Pool: "byok-pool", Provider: "platform-oidc", Issuer: issuer,
		PublicKeys: []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(audience, "//iam.googleapis.com/projects/") || !strings.HasSuffix(audience, "/locations/global/workloadIdentityPools/byok-pool/providers/platform-oidc") {
		t.Fatalf("audience %s", audience)
	}
	now := time.Now()
	token := signJWT(t, key, map[string]any{"iss": issuer, "sub": subject, "aud": "https://iam.googleapis.com/" + strings.TrimPrefix(audience, "//iam.googleapis.com/"),
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	ctx := context.Background()
	principal := gcpkmsemu.FederatedPrincipal(audience, subject)

	t.Run("direct resource access", func(t *testing.T) {
		c := federatedClient(t, f, audience, token, "")
		_, err := c.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
		wantStatus(t, err, codes.PermissionDenied, denied("cloudkms.cryptoKeyVersions.useToEncrypt", keyName))
		if err := f.emu.AddBinding(keyName, "roles/cloudkms.cryptoKeyEncrypterDecrypter", principal); err != nil {
			t.Fatal(err)
		}
		encrypt(t, c, keyName, []byte("x"), nil)
		if n := f.emu.Calls()[gcpkmsemu.Call{Method: "Encrypt", Principal: principal}]; n != 1 {
			t.Fatalf("Encrypt by %s: %d calls (%v)", principal, n, f.emu.Calls())
		}
	})
	t.Run("service account impersonation", func(t *testing.T) {
		c := federatedClient(t, f, audience, token, f.userSA)
		_, err := c.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
		st := wantStatus(t, err, codes.Unauthenticated, "")
		if !strings.Contains(st.Message(), "Permission 'iam.serviceAccounts.getAccessToken' denied") {
			t.Fatalf("message %q", st.Message())
		}
		pool, _, _ := strings.Cut(strings.TrimPrefix(audience, "//iam.googleapis.com/"), "/providers/")
		if err := f.emu.AllowImpersonation(f.userSA, "principalSet://iam.googleapis.com/"+pool+"/*"); err != nil {
			t.Fatal(err)
		}
		c = federatedClient(t, f, audience, token, f.userSA)
		encrypt(t, c, keyName, []byte("x"), nil)
		calls := f.emu.Calls()
		if calls[gcpkmsemu.Call{Method: gcpkmsemu.ImpersonationMethod, Principal: principal}] != 1 ||
			calls[gcpkmsemu.Call{Method: "Encrypt", Principal: f.userSA}] == 0 {
			t.Fatalf("calls %v", calls)
		}
	})
	t.Run("refused subject tokens", func(t *testing.T) {
		for name, claims := range map[string]map[string]any{
			"other audience": {"iss": issuer, "sub": subject, "aud": "https://example.com", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()},
			"other issuer":   {"iss": "https://evil.example", "sub": subject, "aud": "https://iam.googleapis.com/" + strings.TrimPrefix(audience, "//iam.googleapis.com/"), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()},
			"expired":        {"iss": issuer, "sub": subject, "aud": "https://iam.googleapis.com/" + strings.TrimPrefix(audience, "//iam.googleapis.com/"), "iat": now.Add(-3 * time.Hour).Unix(), "exp": now.Add(-2 * time.Hour).Unix()},
		} {
			t.Run(name, func(t *testing.T) {
				c := federatedClient(t, f, audience, signJWT(t, key, claims), "")
				_, err := c.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
				st := wantStatus(t, err, codes.Unauthenticated, "")
				if !strings.Contains(st.Message(), "invalid_grant") {
					t.Fatalf("message %q", st.Message())
				}
			})
		}
		c := federatedClient(t, f, strings.Replace(audience, "platform-oidc", "nope", 1), token, "")
		_, err := c.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
		st := wantStatus(t, err, codes.Unauthenticated, "")
		if !strings.Contains(st.Message(), "invalid_target") {
			t.Fatalf("message %q", st.Message())
		}
	})
}

func TestSeededWorkloadIdentityProvider(t *testing.T) {
	f := newFixture(t) // makes the test keys
	key := testRSAKey()
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pubPEM := strings.ReplaceAll(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "\n", "\n          ")
	seed, err := gcpkmsemu.ParseSeed([]byte(`
projects:
  - id: platform
    number: 123456789012
workloadIdentityProviders:
  - project: platform
    pool: byok-pool
    provider: platform-oidc
    issuer: ` + issuer + `
    audiences: [byok-gcp]
    publicKeys:
      - |
          ` + pubPEM + `
serviceAccounts:
  - project: platform
    accountId: byok-platform
    impersonators:
      - principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/byok-pool/subject/` + subject + `
keyRings:
  - name: ` + ring + `
    cryptoKeys:
      - id: tenant-a
        bindings:
          - role: roles/cloudkms.cryptoKeyEncrypterDecrypter
            members: [serviceAccount:byok-platform@platform.iam.gserviceaccount.com]
`))
	if err != nil {
		t.Fatal(err)
	}
	emu, err := gcpkmsemu.Start(gcpkmsemu.Options{Seed: &seed})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	audience := "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/byok-pool/providers/platform-oidc"
	now := time.Now()
	token := signJWT(t, key, map[string]any{"iss": issuer, "sub": subject, "aud": []string{"other", "byok-gcp"}, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	c := federatedClient(t, &fixture{emu: emu}, audience, token, "byok-platform@platform.iam.gserviceaccount.com")
	ct := encrypt(t, c, keyName, []byte("dek"), nil).Ciphertext
	if pt := decrypt(t, c, keyName, ct, nil); string(pt) != "dek" {
		t.Fatalf("round trip %q", pt)
	}
	_ = f
}
