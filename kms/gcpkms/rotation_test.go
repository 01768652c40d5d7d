package gcpkms

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/openbyok/byok/kms"
)

// TestRotationPeriodFollowed moves the emulator's key clock past the
// key's next rotation: Wrap follows the new primary version, Describe
// reports it, and shares of the old version still unwrap.
func TestRotationPeriodFollowed(t *testing.T) {
	e := newEnv(t)
	p := e.provider(t, e.config())
	ctx := context.Background()
	_, err := e.admin.UpdateCryptoKey(ctx, &kmspb.UpdateCryptoKeyRequest{
		CryptoKey: &kmspb.CryptoKey{Name: keyA, RotationSchedule: &kmspb.CryptoKey_RotationPeriod{RotationPeriod: durationpb.New(30 * 24 * time.Hour)},
			NextRotationTime: timestamppb.New(e.emu.Now().Add(24 * time.Hour))},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"rotation_period", "next_rotation_time"}}})
	must(t, err)
	pt := []byte("0123456789abcdef0123456789abcdef")
	w1, err := p.Wrap(ctx, keyA, pt)
	must(t, err)
	e.emu.Advance(25 * time.Hour)
	w2, err := p.Wrap(ctx, keyA, pt)
	must(t, err)
	if w1.KeyID != keyA+"/cryptoKeyVersions/1" || w2.KeyID != keyA+"/cryptoKeyVersions/2" {
		t.Errorf("before and after the rotation, Wrap recorded %s and %s", w1.KeyID, w2.KeyID)
	}
	info, err := p.Describe(ctx, keyA)
	if err != nil || info.KeyID != w2.KeyID || !info.Enabled || info.Size != 256 || info.Type != "GOOGLE_SYMMETRIC_ENCRYPTION" {
		t.Errorf("Describe after the rotation = %+v, %v", info, err)
	}
	for _, w := range []kms.Wrapped{w1, w2} {
		if got, err := p.Unwrap(ctx, w); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("Unwrap(%s): %v", w.KeyID, err)
		}
	}
	// Once the old version is disabled, its shares fail closed, as
	// the customer's revocation of that version.
	e.setState(t, w1.KeyID, kmspb.CryptoKeyVersion_DISABLED)
	if _, err := p.Unwrap(ctx, w1); err == nil || !strings.Contains(err.Error(), "key-disabled") {
		t.Errorf("Unwrap under a disabled version: %v", err)
	}
	info, err = p.Describe(ctx, w1.KeyID)
	if err != nil || info.Enabled {
		t.Errorf("Describe(disabled version) = %+v, %v", info, err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{KeyName: keyA, Tenant: "t"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		cfg  Config
		want string
	}{
		"tenant":    {Config{Tenant: " "}, "Config.Tenant"},
		"newline":   {Config{Tenant: "a\nb"}, "Config.Tenant"},
		"key name":  {Config{Tenant: "t", KeyName: "keyRings/x"}, "not a Cloud KMS key name"},
		"endpoint":  {Config{Tenant: "t", Endpoint: "https://cloudkms.googleapis.com"}, "Config.Endpoint"},
		"timeout":   {Config{Tenant: "t", Timeout: -1}, "Config.Timeout"},
		"key file":  {Config{Tenant: "t", CredentialsJSON: []byte(`{"type":"authorized_user"}`)}, `type "authorized_user"`},
		"no secret": {Config{Tenant: "t", CredentialsJSON: []byte(`{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----xyz"}`)}, "lacks client_email"},
	} {
		err := tt.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "xyz") {
			t.Errorf("%s: Validate() = %v, want an error containing %q", name, err, tt.want)
		}
	}
}
