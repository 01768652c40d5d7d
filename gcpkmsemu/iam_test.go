package gcpkmsemu_test

import (
	"context"
	"slices"
	"testing"

	"cloud.google.com/go/iam"
	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
)

func denied(perm, resource string) string {
	return "Permission '" + perm + "' denied on resource '" + resource + "' (or it may not exist)."
}

func TestPermissionDenied(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.nobody.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
	st := wantStatus(t, err, codes.PermissionDenied, denied("cloudkms.cryptoKeyVersions.useToEncrypt", keyName))
	ei, ok := st.Details()[0].(*errdetails.ErrorInfo)
	if !ok || ei.Reason != "IAM_PERMISSION_DENIED" || ei.Metadata["permission"] != "cloudkms.cryptoKeyVersions.useToEncrypt" || ei.Metadata["resource"] != keyName {
		t.Fatalf("details %v", st.Details())
	}
	ct := encrypt(t, f.user, keyName, []byte("x"), nil).Ciphertext
	_, err = f.nobody.Decrypt(ctx, &kmspb.DecryptRequest{Name: keyName, Ciphertext: ct})
	wantStatus(t, err, codes.PermissionDenied, denied("cloudkms.cryptoKeyVersions.useToDecrypt", keyName))
	// The encrypter/decrypter role does not read the key.
	_, err = f.user.GetCryptoKey(ctx, &kmspb.GetCryptoKeyRequest{Name: keyName})
	wantStatus(t, err, codes.PermissionDenied, denied("cloudkms.cryptoKeys.get", keyName))
	// The viewer (bound on the key ring) reads but does not use the key.
	if _, err := f.viewer.GetCryptoKey(ctx, &kmspb.GetCryptoKeyRequest{Name: keyName}); err != nil {
		t.Fatal(err)
	}
	_, err = f.viewer.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
	wantStatus(t, err, codes.PermissionDenied, denied("cloudkms.cryptoKeyVersions.useToEncrypt", keyName))
	_, err = f.viewer.DestroyCryptoKeyVersion(ctx, &kmspb.DestroyCryptoKeyVersionRequest{Name: keyName + "/cryptoKeyVersions/1"})
	wantStatus(t, err, codes.PermissionDenied, denied("cloudkms.cryptoKeyVersions.destroy", keyName+"/cryptoKeyVersions/1"))
	// A key that does not exist: denied to a caller without inherited
	// bindings, NOT_FOUND to the project's admin.
	missing := ring + "/cryptoKeys/missing"
	_, err = f.user.Encrypt(ctx, &kmspb.EncryptRequest{Name: missing, Plaintext: []byte("x")})
	wantStatus(t, err, codes.PermissionDenied, denied("cloudkms.cryptoKeyVersions.useToEncrypt", missing))
	_, err = f.admin.GetCryptoKey(ctx, &kmspb.GetCryptoKeyRequest{Name: missing})
	wantStatus(t, err, codes.NotFound, "CryptoKey "+missing+" not found.")
	// The admin role does not use keys either.
	_, err = f.admin.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
	wantStatus(t, err, codes.PermissionDenied, denied("cloudkms.cryptoKeyVersions.useToEncrypt", keyName))
}

func TestIAMPolicyReadModifyWrite(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pol, err := f.admin.GetIamPolicy(ctx, &iampb.GetIamPolicyRequest{Resource: keyName})
	if err != nil || len(pol.Bindings) != 1 || pol.Bindings[0].Role != "roles/cloudkms.cryptoKeyEncrypterDecrypter" {
		t.Fatalf("GetIamPolicy = %v, %v", pol, err)
	}
	// Revoke: remove the binding; the platform's calls fail closed.
	stale := pol.Etag
	pol.Bindings = nil
	if _, err := f.admin.SetIamPolicy(ctx, &iampb.SetIamPolicyRequest{Resource: keyName, Policy: pol}); err != nil {
		t.Fatal(err)
	}
	_, err = f.user.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
	wantStatus(t, err, codes.PermissionDenied, denied("cloudkms.cryptoKeyVersions.useToEncrypt", keyName))
	// A write with the old etag is refused.
	_, err = f.admin.SetIamPolicy(ctx, &iampb.SetIamPolicyRequest{Resource: keyName, Policy: &iampb.Policy{Etag: stale}})
	wantStatus(t, err, codes.Aborted, "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.")

	// Grant again through the iam.Handle of the client (ResourceIAM).
	h := f.admin.ResourceIAM(keyName)
	p, err := h.Policy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Add("serviceAccount:"+f.userSA, iam.RoleName("roles/cloudkms.cryptoKeyEncrypterDecrypter"))
	if err := h.SetPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	encrypt(t, f.user, keyName, []byte("x"), nil)

	// Only known roles and existing accounts.
	_, err = f.admin.SetIamPolicy(ctx, &iampb.SetIamPolicyRequest{Resource: keyName, Policy: &iampb.Policy{
		Bindings: []*iampb.Binding{{Role: "roles/storage.admin", Members: []string{"serviceAccount:" + f.userSA}}}}})
	wantStatus(t, err, codes.InvalidArgument, "Role roles/storage.admin is not supported for this resource.")
	_, err = f.admin.SetIamPolicy(ctx, &iampb.SetIamPolicyRequest{Resource: keyName, Policy: &iampb.Policy{
		Bindings: []*iampb.Binding{{Role: "roles/cloudkms.viewer", Members: []string{"serviceAccount:ghost@platform.iam.gserviceaccount.com"}}}}})
	wantStatus(t, err, codes.InvalidArgument, "Service account ghost@platform.iam.gserviceaccount.com does not exist.")
	// Changing IAM needs setIamPolicy.
	_, err = f.user.SetIamPolicy(ctx, &iampb.SetIamPolicyRequest{Resource: keyName, Policy: &iampb.Policy{}})
	wantStatus(t, err, codes.PermissionDenied, denied("cloudkms.cryptoKeys.setIamPolicy", keyName))
	_, err = f.viewer.GetIamPolicy(ctx, &iampb.GetIamPolicyRequest{Resource: keyName})
	wantStatus(t, err, codes.PermissionDenied, denied("cloudkms.cryptoKeys.getIamPolicy", keyName))
	// Key ring policies work the same way.
	rp, err := f.admin.GetIamPolicy(ctx, &iampb.GetIamPolicyRequest{Resource: ring})
	if err != nil || len(rp.Bindings) != 1 || rp.Bindings[0].Role != "roles/cloudkms.viewer" {
		t.Fatalf("key ring policy = %v, %v", rp, err)
	}
}

func TestTestIamPermissions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ask := []string{"cloudkms.cryptoKeyVersions.useToEncrypt", "cloudkms.cryptoKeyVersions.useToDecrypt", "cloudkms.cryptoKeys.get"}
	check := func(who string, got *iampb.TestIamPermissionsResponse, err error, want ...string) {
		t.Helper()
		if err != nil || !slices.Equal(got.GetPermissions(), want) {
			t.Fatalf("%s: TestIamPermissions = %v, %v; want %v", who, got.GetPermissions(), err, want)
		}
	}
	got, err := f.user.TestIamPermissions(ctx, &iampb.TestIamPermissionsRequest{Resource: keyName, Permissions: ask})
	check("user", got, err, ask[0], ask[1])
	got, err = f.viewer.TestIamPermissions(ctx, &iampb.TestIamPermissionsRequest{Resource: keyName, Permissions: ask})
	check("viewer", got, err, ask[2])
	got, err = f.nobody.TestIamPermissions(ctx, &iampb.TestIamPermissionsRequest{Resource: keyName, Permissions: ask})
	check("nobody", got, err)
	// Through the iam.Handle too.
	perms, err := f.user.ResourceIAM(keyName).TestPermissions(ctx, ask)
	if err != nil || len(perms) != 2 {
		t.Fatalf("Handle.TestPermissions = %v, %v", perms, err)
	}
}
