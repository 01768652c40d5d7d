package gcpkms

import (
	"context"
	"crypto"
	"crypto/rand"
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
	"google.golang.org/api/option"

	"github.com/openbyok/byok/gcpkmsemu"
)

// TestWorkloadIdentityFederation: the platform signs in without a key file,
// with workload identity federation from its own cloud (an OIDC token of
// its workload exchanged at Google's STS, then the platform's service
// account impersonated), the credentials a connector builds from an
// external_account file and passes in ClientOptions; wrap and unwrap work
// as that service account, which the customer granted.
func TestWorkloadIdentityFederation(t *testing.T) {
	e := newEnv(t)
	const issuer, subject = "https://oidc.platform.example", "system:serviceaccount:byok:byok"
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	audience, err := e.emu.AddWorkloadIdentityProvider(gcpkmsemu.WorkloadIdentityProvider{
		Project: "byok-platform", Pool: "byok-pool", Provider: "platform-oidc", Issuer: issuer,
		PublicKeys: []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))},
	})
	if err != nil {
		t.Fatal(err)
	}
	pool, _, _ := strings.Cut(strings.TrimPrefix(audience, "//iam.googleapis.com/"), "/providers/")
	if err := e.emu.AllowImpersonation(e.platform, "principalSet://iam.googleapis.com/"+pool+"/*"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "k1"})
	claims, _ := json.Marshal(map[string]any{"iss": issuer, "sub": subject,
		"aud": "https://iam.googleapis.com/" + strings.TrimPrefix(audience, "//iam.googleapis.com/"),
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	signed := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(signed+"."+base64.RawURLEncoding.EncodeToString(sig)), 0o600); err != nil {
		t.Fatal(err)
	}
	creds, err := credentials.DetectDefault(&credentials.DetectOptions{
		CredentialsJSON: e.emu.ExternalAccountConfig(audience, tokenFile, e.platform),
		Scopes:          []string{gcpkmsemu.ScopeCloudPlatform},
		Client:          e.emu.HTTPClient(),
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.config(option.WithAuthCredentials(creds))
	cfg.CredentialsJSON, cfg.ServiceAccount = nil, e.platform
	p := e.provider(t, cfg)
	ctx := context.Background()
	w, err := p.Wrap(ctx, keyA, []byte("a share under a federated sign-in"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := p.Unwrap(ctx, w); err != nil || string(pt) != "a share under a federated sign-in" {
		t.Fatalf("Unwrap: %q, %v", pt, err)
	}
	calls := e.emu.Calls()
	if calls[gcpkmsemu.Call{Method: gcpkmsemu.ImpersonationMethod, Principal: gcpkmsemu.FederatedPrincipal(audience, subject)}] == 0 ||
		calls[gcpkmsemu.Call{Method: "Decrypt", Principal: e.platform}] == 0 {
		t.Fatalf("the calls were not made as the impersonated platform account: %v", calls)
	}
}
