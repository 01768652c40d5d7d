package gcpkmsemu_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/auth/credentials"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/openbyok/byok/gcpkmsemu"
	"google.golang.org/api/option"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// errorInfoReason returns the reason of the status's ErrorInfo detail.
func errorInfoReason(t *testing.T, err error) (string, map[string]string) {
	t.Helper()
	st := wantStatus(t, err, codes.Unauthenticated, "")
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.Reason, ei.Metadata
		}
	}
	t.Fatalf("no ErrorInfo in %v", st.Details())
	return "", nil
}

const invalidCredential = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."

// logBuffer collects the emulator's debug log.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The official client, given a key file, signs its own JWT with scope and
// an empty audience (internaloption.EnableJwtWithScope) and never calls
// the token_uri.
func TestClientSendsASelfSignedJWTWithScope(t *testing.T) {
	var log logBuffer
	emu, err := gcpkmsemu.Start(gcpkmsemu.Options{Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	email, _ := emu.CreateServiceAccount("platform", "byok-platform")
	keyFile, _ := emu.CreateServiceAccountKey(email)
	if err := emu.AddBinding("platform", "roles/cloudkms.admin", "serviceAccount:"+email); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, emu.ClientOptions(keyFile)...)
	if _, err := c.CreateKeyRing(context.Background(), &kmspb.CreateKeyRingRequest{Parent: "projects/platform/locations/global", KeyRingId: "r"}); err != nil {
		t.Fatal(err)
	}
	want := `kind="self-signed JWT" iss=` + email + ` aud="" scope="https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/cloudkms"`
	if !strings.Contains(log.String(), want) {
		t.Fatalf("log does not show %s:\n%s", want, log.String())
	}
	if n := emu.CallCount(gcpkmsemu.TokenMethod); n != 0 {
		t.Fatalf("token endpoint called %d times", n)
	}
	// With option.WithAudiences the JWT carries that audience instead.
	c2 := newClient(t, append(emu.ClientOptions(keyFile), option.WithAudiences(gcpkmsemu.Audience))...)
	if _, err := c2.GetKeyRing(context.Background(), &kmspb.GetKeyRingRequest{Name: "projects/platform/locations/global/keyRings/r"}); err != nil {
		t.Fatal(err)
	}
	c3 := newClient(t, append(emu.ClientOptions(keyFile), option.WithAudiences("https://storage.googleapis.com/"))...)
	_, err = c3.GetKeyRing(context.Background(), &kmspb.GetKeyRingRequest{Name: "projects/platform/locations/global/keyRings/r"})
	if reason, _ := errorInfoReason(t, err); reason != "ACCESS_TOKEN_TYPE_UNSUPPORTED" {
		t.Fatalf("another audience: reason %s", reason)
	}
}

// Credentials built with the auth library's documented DetectOptions (no
// self-signed JWT) exchange a JWT at the key file's token_uri.
func TestTokenExchangeAtTokenURI(t *testing.T) {
	f := newFixture(t)
	keyFile, _ := f.emu.CreateServiceAccountKey(f.userSA)
	creds, err := credentials.DetectDefault(&credentials.DetectOptions{
		CredentialsJSON: keyFile,
		Scopes:          []string{gcpkmsemu.ScopeCloudPlatform},
		Client:          f.emu.HTTPClient(),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, option.WithEndpoint(f.emu.Addr()),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(f.emu.TransportCredentials())),
		option.WithAuthCredentials(creds))
	ct := encrypt(t, c, keyName, []byte("dek"), nil).Ciphertext
	if pt := decrypt(t, c, keyName, ct, nil); string(pt) != "dek" {
		t.Fatalf("round trip: %q", pt)
	}
	calls := f.emu.Calls()
	if calls[gcpkmsemu.Call{Method: gcpkmsemu.TokenMethod, Principal: f.userSA}] != 1 {
		t.Fatalf("token endpoint calls: %v", calls)
	}
	if calls[gcpkmsemu.Call{Method: "Encrypt", Principal: f.userSA}] != 1 {
		t.Fatalf("Encrypt calls: %v", calls)
	}

	// A disabled account gets no token: the call fails UNAUTHENTICATED with
	// the token endpoint's answer.
	if err := f.emu.SetServiceAccountDisabled(f.viewerSA, true); err != nil {
		t.Fatal(err)
	}
	viewerKey, _ := f.emu.CreateServiceAccountKey(f.viewerSA)
	creds, _ = credentials.DetectDefault(&credentials.DetectOptions{CredentialsJSON: viewerKey,
		Scopes: []string{gcpkmsemu.ScopeCloudPlatform}, Client: f.emu.HTTPClient()})
	c = newClient(t, option.WithEndpoint(f.emu.Addr()),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(f.emu.TransportCredentials())),
		option.WithAuthCredentials(creds))
	_, err = c.GetCryptoKey(context.Background(), &kmspb.GetCryptoKeyRequest{Name: keyName})
	st := wantStatus(t, err, codes.Unauthenticated, "")
	if !strings.Contains(st.Message(), `"error":"invalid_grant","error_description":"Invalid grant: account not found"`) {
		t.Fatalf("message %q does not carry the token endpoint's answer", st.Message())
	}
}

func TestMissingAndInvalidCredentials(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	anon := newClient(t, option.WithEndpoint(f.emu.Addr()),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(f.emu.TransportCredentials())),
		option.WithoutAuthentication())
	_, err := anon.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
	wantStatus(t, err, codes.Unauthenticated, "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.")
	if reason, md := errorInfoReason(t, err); reason != "CREDENTIALS_MISSING" || md["method"] != "google.cloud.kms.v1.KeyManagementService.Encrypt" || md["service"] != "cloudkms.googleapis.com" {
		t.Fatalf("ErrorInfo %s %v", reason, md)
	}

	// A key file of another emulator: same account, a key this one does not know.
	other, err := gcpkmsemu.Start(gcpkmsemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	email, _ := other.CreateServiceAccount("platform", "byok-platform")
	foreign, _ := other.CreateServiceAccountKey(email)
	c := newClient(t, f.emu.ClientOptions(foreign)...)
	_, err = c.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
	wantStatus(t, err, codes.Unauthenticated, invalidCredential)

	// A key that was disabled.
	keyFile, _ := f.emu.CreateServiceAccountKey(f.userSA)
	var kf struct {
		ID string `json:"private_key_id"`
	}
	json.Unmarshal(keyFile, &kf)
	c = newClient(t, f.emu.ClientOptions(keyFile)...)
	encrypt(t, c, keyName, []byte("x"), nil)
	if err := f.emu.SetServiceAccountKeyDisabled(f.userSA, kf.ID, true); err != nil {
		t.Fatal(err)
	}
	_, err = c.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
	wantStatus(t, err, codes.Unauthenticated, invalidCredential)
}

func TestDisabledServiceAccount(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	encrypt(t, f.user, keyName, []byte("x"), nil)
	if err := f.emu.SetServiceAccountDisabled(f.userSA, true); err != nil {
		t.Fatal(err)
	}
	_, err := f.user.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
	wantStatus(t, err, codes.Unauthenticated, invalidCredential)
	if reason, md := errorInfoReason(t, err); reason != "ACCOUNT_STATE_INVALID" || md["email"] != f.userSA {
		t.Fatalf("ErrorInfo %s %v", reason, md)
	}
	if err := f.emu.SetServiceAccountDisabled(f.userSA, false); err != nil {
		t.Fatal(err)
	}
	encrypt(t, f.user, keyName, []byte("x"), nil)
}

func TestExpiredToken(t *testing.T) {
	f := newFixture(t)
	encrypt(t, f.user, keyName, []byte("x"), nil) // the client caches its JWT (1 h)
	f.clock.offset = 2 * time.Hour
	_, err := f.user.Encrypt(context.Background(), &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
	if reason, _ := errorInfoReason(t, err); reason != "ACCESS_TOKEN_EXPIRED" {
		t.Fatalf("reason %s", reason)
	}
}

// A public key uploaded (or seeded) for an account verifies the JWTs of
// the key file made from its private key.
func TestUploadedPublicKey(t *testing.T) {
	f := newFixture(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	id, err := f.emu.UploadServiceAccountKey(f.userSA, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	if err != nil {
		t.Fatal(err)
	}
	privDER, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "platform", "private_key_id": id, "client_email": f.userSA,
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})),
		"token_uri":   "https://oauth2.googleapis.com/token",
	})
	c := newClient(t, f.emu.ClientOptions(keyFile)...)
	encrypt(t, c, keyName, []byte("x"), nil)
	if _, err := f.emu.UploadServiceAccountKey(f.userSA, []byte("not pem")); err == nil {
		t.Fatal("garbage public key accepted")
	}
}
