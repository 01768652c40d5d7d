package gcpkmsemu_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func setState(t *testing.T, f *fixture, name string, st kmspb.CryptoKeyVersion_CryptoKeyVersionState) *kmspb.CryptoKeyVersion {
	t.Helper()
	v, err := f.admin.UpdateCryptoKeyVersion(context.Background(), &kmspb.UpdateCryptoKeyVersionRequest{
		CryptoKeyVersion: &kmspb.CryptoKeyVersion{Name: name, State: st},
		UpdateMask:       &fieldmaskpb.FieldMask{Paths: []string{"state"}},
	})
	if err != nil {
		t.Fatalf("UpdateCryptoKeyVersion(%s, %v): %v", name, st, err)
	}
	return v
}

func TestKeyRingAndKeyManagement(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	kr, err := f.admin.CreateKeyRing(ctx, &kmspb.CreateKeyRingRequest{Parent: "projects/customer/locations/europe-west1", KeyRingId: "eu"})
	if err != nil || kr.Name != "projects/customer/locations/europe-west1/keyRings/eu" || kr.CreateTime == nil {
		t.Fatalf("CreateKeyRing = %v, %v", kr, err)
	}
	_, err = f.admin.CreateKeyRing(ctx, &kmspb.CreateKeyRingRequest{Parent: "projects/customer/locations/europe-west1", KeyRingId: "eu"})
	wantStatus(t, err, codes.AlreadyExists, "KeyRing projects/customer/locations/europe-west1/keyRings/eu already exists.")
	if got, err := f.admin.GetKeyRing(ctx, &kmspb.GetKeyRingRequest{Name: kr.Name}); err != nil || got.Name != kr.Name {
		t.Fatalf("GetKeyRing = %v, %v", got, err)
	}
	_, err = f.admin.GetKeyRing(ctx, &kmspb.GetKeyRingRequest{Name: "projects/customer/locations/global/keyRings/none"})
	wantStatus(t, err, codes.NotFound, "KeyRing projects/customer/locations/global/keyRings/none not found.")

	hsm, err := f.admin.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: kr.Name, CryptoKeyId: "hsm-key", CryptoKey: &kmspb.CryptoKey{
		Purpose:         kmspb.CryptoKey_ENCRYPT_DECRYPT,
		VersionTemplate: &kmspb.CryptoKeyVersionTemplate{ProtectionLevel: kmspb.ProtectionLevel_HSM},
		Labels:          map[string]string{"tenant": "a"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if hsm.Primary.GetName() != hsm.Name+"/cryptoKeyVersions/1" || hsm.Primary.ProtectionLevel != kmspb.ProtectionLevel_HSM ||
		hsm.VersionTemplate.Algorithm != kmspb.CryptoKeyVersion_GOOGLE_SYMMETRIC_ENCRYPTION || hsm.Labels["tenant"] != "a" ||
		hsm.DestroyScheduledDuration.AsDuration() != 30*24*time.Hour {
		t.Fatalf("CreateCryptoKey = %v", hsm)
	}
	_, err = f.admin.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: kr.Name, CryptoKeyId: "hsm-key", CryptoKey: &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT}})
	wantStatus(t, err, codes.AlreadyExists, "CryptoKey "+hsm.Name+" already exists.")
	_, err = f.admin.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: kr.Name, CryptoKeyId: "bad id!", CryptoKey: &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT}})
	wantStatus(t, err, codes.InvalidArgument, "")
	sign, err := f.admin.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: kr.Name, CryptoKeyId: "signer", CryptoKey: &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ASYMMETRIC_SIGN}})
	if err != nil || sign.Purpose != kmspb.CryptoKey_ASYMMETRIC_SIGN || sign.Primary != nil {
		t.Fatalf("CreateCryptoKey(ASYMMETRIC_SIGN) = %v, %v", sign, err)
	}
	if err := f.emu.AddBinding("customer", "roles/cloudkms.cryptoKeyEncrypterDecrypter", "serviceAccount:"+f.userSA); err != nil {
		t.Fatal(err)
	}
	_, err = f.user.Encrypt(ctx, &kmspb.EncryptRequest{Name: sign.Name, Plaintext: []byte("x")})
	wantStatus(t, err, codes.InvalidArgument, "")
	if resp := encrypt(t, f.user, hsm.Name, []byte("x"), nil); resp.ProtectionLevel != kmspb.ProtectionLevel_HSM {
		t.Fatalf("Encrypt with an HSM key answered %v", resp.ProtectionLevel)
	}
	empty, err := f.admin.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: kr.Name, CryptoKeyId: "empty", SkipInitialVersionCreation: true,
		CryptoKey: &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT}})
	if err != nil || empty.Primary != nil {
		t.Fatalf("CreateCryptoKey(skip) = %v, %v", empty, err)
	}
	_, err = f.user.Encrypt(ctx, &kmspb.EncryptRequest{Name: empty.Name, Plaintext: []byte("x")})
	wantStatus(t, err, codes.FailedPrecondition, "")

	var names []string
	it := f.admin.ListCryptoKeys(ctx, &kmspb.ListCryptoKeysRequest{Parent: kr.Name, PageSize: 2})
	for {
		k, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, k.Name[len(kr.Name)+len("/cryptoKeys/"):])
	}
	if len(names) != 3 || names[0] != "empty" || names[1] != "hsm-key" || names[2] != "signer" {
		t.Fatalf("ListCryptoKeys = %v", names)
	}
	rit := f.admin.ListKeyRings(ctx, &kmspb.ListKeyRingsRequest{Parent: "projects/customer/locations/global"})
	if r, err := rit.Next(); err != nil || r.Name != ring {
		t.Fatalf("ListKeyRings = %v, %v", r, err)
	}
}

func TestVersionStatesAndDestruction(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	v1 := keyName + "/cryptoKeyVersions/1"
	ct := encrypt(t, f.user, keyName, []byte("dek"), nil).Ciphertext

	if v := setState(t, f, v1, kmspb.CryptoKeyVersion_DISABLED); v.State != kmspb.CryptoKeyVersion_DISABLED {
		t.Fatalf("state = %v", v.State)
	}
	_, err := f.user.Encrypt(ctx, &kmspb.EncryptRequest{Name: keyName, Plaintext: []byte("x")})
	st := wantStatus(t, err, codes.FailedPrecondition, v1+" is not enabled, current state is: DISABLED.")
	if len(st.Details()) != 1 {
		t.Fatalf("details = %v, want a PreconditionFailure", st.Details())
	}
	_, err = f.user.Decrypt(ctx, &kmspb.DecryptRequest{Name: keyName, Ciphertext: ct})
	wantStatus(t, err, codes.FailedPrecondition, v1+" is not enabled, current state is: DISABLED.")
	setState(t, f, v1, kmspb.CryptoKeyVersion_ENABLED)
	if pt := decrypt(t, f.user, keyName, ct, nil); string(pt) != "dek" {
		t.Fatalf("after re-enable: %q", pt)
	}

	// Schedule destruction: DESTROY_SCHEDULED, 30 days ahead; restore; again; the clock passes.
	d, err := f.admin.DestroyCryptoKeyVersion(ctx, &kmspb.DestroyCryptoKeyVersionRequest{Name: v1})
	if err != nil || d.State != kmspb.CryptoKeyVersion_DESTROY_SCHEDULED {
		t.Fatalf("Destroy = %v, %v", d, err)
	}
	if got := d.DestroyTime.AsTime().Sub(f.emu.Now()); got < 30*24*time.Hour-time.Minute || got > 30*24*time.Hour {
		t.Fatalf("destroy_time %v ahead, want 30 days", got)
	}
	_, err = f.user.Decrypt(ctx, &kmspb.DecryptRequest{Name: keyName, Ciphertext: ct})
	wantStatus(t, err, codes.FailedPrecondition, v1+" is not enabled, current state is: DESTROY_SCHEDULED.")
	_, err = f.admin.DestroyCryptoKeyVersion(ctx, &kmspb.DestroyCryptoKeyVersionRequest{Name: v1})
	wantStatus(t, err, codes.FailedPrecondition, "")
	_, err = f.admin.UpdateCryptoKeyVersion(ctx, &kmspb.UpdateCryptoKeyVersionRequest{
		CryptoKeyVersion: &kmspb.CryptoKeyVersion{Name: v1, State: kmspb.CryptoKeyVersion_ENABLED},
		UpdateMask:       &fieldmaskpb.FieldMask{Paths: []string{"state"}}})
	wantStatus(t, err, codes.FailedPrecondition, "")
	r, err := f.admin.RestoreCryptoKeyVersion(ctx, &kmspb.RestoreCryptoKeyVersionRequest{Name: v1})
	if err != nil || r.State != kmspb.CryptoKeyVersion_DISABLED || r.DestroyTime != nil {
		t.Fatalf("Restore = %v, %v", r, err)
	}
	_, err = f.admin.RestoreCryptoKeyVersion(ctx, &kmspb.RestoreCryptoKeyVersionRequest{Name: v1})
	wantStatus(t, err, codes.FailedPrecondition, "")
	setState(t, f, v1, kmspb.CryptoKeyVersion_ENABLED)
	if _, err := f.admin.DestroyCryptoKeyVersion(ctx, &kmspb.DestroyCryptoKeyVersionRequest{Name: v1}); err != nil {
		t.Fatal(err)
	}
	f.emu.Advance(30*24*time.Hour + time.Second)
	v, err := f.viewer.GetCryptoKeyVersion(ctx, &kmspb.GetCryptoKeyVersionRequest{Name: v1})
	if err != nil || v.State != kmspb.CryptoKeyVersion_DESTROYED || v.DestroyEventTime == nil {
		t.Fatalf("after the scheduled time: %v, %v", v, err)
	}
	_, err = f.user.Decrypt(ctx, &kmspb.DecryptRequest{Name: keyName, Ciphertext: ct})
	wantStatus(t, err, codes.FailedPrecondition, v1+" is not enabled, current state is: DESTROYED.")
	_, err = f.admin.RestoreCryptoKeyVersion(ctx, &kmspb.RestoreCryptoKeyVersionRequest{Name: v1})
	wantStatus(t, err, codes.FailedPrecondition, "")
	_, err = f.viewer.GetCryptoKeyVersion(ctx, &kmspb.GetCryptoKeyVersionRequest{Name: keyName + "/cryptoKeyVersions/9"})
	wantStatus(t, err, codes.NotFound, "CryptoKeyVersion "+keyName+"/cryptoKeyVersions/9 not found.")
}

func TestManualRotationAndDecryptAfterRotation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	old := encrypt(t, f.user, keyName, []byte("old dek"), []byte("aad")).Ciphertext
	v2, err := f.admin.CreateCryptoKeyVersion(ctx, &kmspb.CreateCryptoKeyVersionRequest{Parent: keyName})
	if err != nil || v2.Name != keyName+"/cryptoKeyVersions/2" || v2.State != kmspb.CryptoKeyVersion_ENABLED {
		t.Fatalf("CreateCryptoKeyVersion = %v, %v", v2, err)
	}
	// A new version is not primary until made so.
	if resp := encrypt(t, f.user, keyName, []byte("x"), nil); resp.Name != keyName+"/cryptoKeyVersions/1" {
		t.Fatalf("before UpdateCryptoKeyPrimaryVersion Encrypt used %s", resp.Name)
	}
	k, err := f.admin.UpdateCryptoKeyPrimaryVersion(ctx, &kmspb.UpdateCryptoKeyPrimaryVersionRequest{Name: keyName, CryptoKeyVersionId: "2"})
	if err != nil || k.Primary.GetName() != v2.Name {
		t.Fatalf("UpdateCryptoKeyPrimaryVersion = %v, %v", k, err)
	}
	resp := encrypt(t, f.user, keyName, []byte("new dek"), []byte("aad"))
	if resp.Name != v2.Name {
		t.Fatalf("after rotation Encrypt used %s", resp.Name)
	}
	out, err := f.user.Decrypt(ctx, &kmspb.DecryptRequest{Name: keyName, Ciphertext: old, AdditionalAuthenticatedData: []byte("aad")})
	if err != nil || string(out.Plaintext) != "old dek" || out.UsedPrimary {
		t.Fatalf("old ciphertext after rotation: %v, %v", out, err)
	}
	if pt := decrypt(t, f.user, keyName, resp.Ciphertext, []byte("aad")); string(pt) != "new dek" {
		t.Fatalf("new ciphertext: %q", pt)
	}
	// A pinned version encrypts with that version.
	if r := encrypt(t, f.user, keyName+"/cryptoKeyVersions/1", []byte("x"), nil); r.Name != keyName+"/cryptoKeyVersions/1" {
		t.Fatalf("pinned Encrypt used %s", r.Name)
	}
	// Listing shows both, oldest first, page by page.
	it := f.viewer.ListCryptoKeyVersions(ctx, &kmspb.ListCryptoKeyVersionsRequest{Parent: keyName, PageSize: 1})
	var got []string
	for {
		v, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v.Name)
	}
	if len(got) != 2 || got[0] != keyName+"/cryptoKeyVersions/1" || got[1] != v2.Name {
		t.Fatalf("ListCryptoKeyVersions = %v", got)
	}
	_, err = f.admin.UpdateCryptoKeyPrimaryVersion(ctx, &kmspb.UpdateCryptoKeyPrimaryVersionRequest{Name: keyName, CryptoKeyVersionId: "7"})
	wantStatus(t, err, codes.NotFound, "")
}

func TestRotationPeriodOnTheEmulatorClock(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	start := f.emu.Now()
	_, err := f.admin.UpdateCryptoKey(ctx, &kmspb.UpdateCryptoKeyRequest{
		CryptoKey: &kmspb.CryptoKey{Name: keyName,
			RotationSchedule: &kmspb.CryptoKey_RotationPeriod{RotationPeriod: durationpb.New(time.Hour)}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"rotation_period"}}})
	wantStatus(t, err, codes.InvalidArgument, "rotation_period must be at least 24 hours and at most 876,000 hours.")
	_, err = f.admin.UpdateCryptoKey(ctx, &kmspb.UpdateCryptoKeyRequest{
		CryptoKey: &kmspb.CryptoKey{Name: keyName,
			RotationSchedule: &kmspb.CryptoKey_RotationPeriod{RotationPeriod: durationpb.New(48 * time.Hour)}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"rotation_period"}}})
	wantStatus(t, err, codes.InvalidArgument, "next_rotation_time must be set when rotation_period is set.")
	k, err := f.admin.UpdateCryptoKey(ctx, &kmspb.UpdateCryptoKeyRequest{
		CryptoKey: &kmspb.CryptoKey{Name: keyName,
			RotationSchedule: &kmspb.CryptoKey_RotationPeriod{RotationPeriod: durationpb.New(30 * 24 * time.Hour)},
			NextRotationTime: timestamppb.New(start.Add(24 * time.Hour))},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"rotation_period", "next_rotation_time"}}})
	if err != nil || k.GetRotationPeriod().AsDuration() != 30*24*time.Hour || !k.NextRotationTime.AsTime().Equal(start.Add(24*time.Hour).Truncate(time.Nanosecond)) {
		t.Fatalf("UpdateCryptoKey = %v, %v", k, err)
	}
	old := encrypt(t, f.user, keyName, []byte("before"), nil).Ciphertext
	f.emu.Advance(23 * time.Hour)
	if k, _ := f.viewer.GetCryptoKey(ctx, &kmspb.GetCryptoKeyRequest{Name: keyName}); k.Primary.GetName() != keyName+"/cryptoKeyVersions/1" {
		t.Fatalf("rotated early: primary %s", k.Primary.GetName())
	}
	f.emu.Advance(2 * time.Hour)
	k, err = f.viewer.GetCryptoKey(ctx, &kmspb.GetCryptoKeyRequest{Name: keyName})
	if err != nil || k.Primary.GetName() != keyName+"/cryptoKeyVersions/2" {
		t.Fatalf("after next_rotation_time: %v, %v", k.GetPrimary().GetName(), err)
	}
	if want := start.Add(31 * 24 * time.Hour); !k.NextRotationTime.AsTime().Equal(want) {
		t.Fatalf("next_rotation_time = %v, want %v", k.NextRotationTime.AsTime(), want)
	}
	if resp := encrypt(t, f.user, keyName, []byte("after"), nil); resp.Name != keyName+"/cryptoKeyVersions/2" {
		t.Fatalf("Encrypt after rotation used %s", resp.Name)
	}
	if pt := decrypt(t, f.user, keyName, old, nil); !bytes.Equal(pt, []byte("before")) {
		t.Fatalf("old ciphertext: %q", pt)
	}
	// A jump over several periods rotates once and moves next_rotation_time past now.
	f.emu.Advance(100 * 24 * time.Hour)
	k, _ = f.viewer.GetCryptoKey(ctx, &kmspb.GetCryptoKeyRequest{Name: keyName})
	if k.Primary.GetName() != keyName+"/cryptoKeyVersions/3" || !k.NextRotationTime.AsTime().After(f.emu.Now()) {
		t.Fatalf("after a long jump: primary %s next %v", k.Primary.GetName(), k.NextRotationTime.AsTime())
	}
}
