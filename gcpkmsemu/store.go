package gcpkmsemu

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"sort"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Defaults and limits of the service that the emulator keeps.
const (
	// DefaultDestroyScheduledDuration is how long a version stays
	// DESTROY_SCHEDULED when its key sets no destroy_scheduled_duration.
	DefaultDestroyScheduledDuration = 30 * 24 * time.Hour
	// minRotationPeriod is the shortest rotation period the service takes.
	minRotationPeriod = 24 * time.Hour
	// maxPayload is the largest plaintext or additional authenticated data
	// Encrypt takes (64 KiB).
	maxPayload = 64 * 1024
)

// project is a Google Cloud project: its number and its IAM policy (the
// bindings every key ring and key in it inherits).
type project struct {
	id     string
	number int64
	policy *iampb.Policy
}

// keyRing is a key ring; it has no state besides its IAM policy.
type keyRing struct {
	name    string
	created time.Time
	policy  *iampb.Policy
}

// cryptoKey is a crypto key with its versions, oldest first (version id
// n is versions[n-1]).
type cryptoKey struct {
	name            string
	created         time.Time
	purpose         kmspb.CryptoKey_CryptoKeyPurpose
	protection      kmspb.ProtectionLevel
	labels          map[string]string
	rotationPeriod  time.Duration // 0: no automatic rotation
	nextRotation    time.Time
	destroyDuration time.Duration
	primary         int // version id; 0: none
	versions        []*keyVersion
	policy          *iampb.Policy
}

// keyVersion is one version of a key and, until it is destroyed, its
// AES-256-GCM key material.
type keyVersion struct {
	id                            int
	state                         kmspb.CryptoKeyVersion_CryptoKeyVersionState
	created                       time.Time
	destroyTime, destroyEventTime time.Time
	aead                          cipher.AEAD // nil once DESTROYED
}

// newVersion appends an ENABLED version made at t and returns it; an
// ENCRYPT_DECRYPT key gets fresh key material.
func (k *cryptoKey) newVersion(t time.Time) *keyVersion {
	v := &keyVersion{id: len(k.versions) + 1, state: kmspb.CryptoKeyVersion_ENABLED, created: t}
	if k.purpose == kmspb.CryptoKey_ENCRYPT_DECRYPT {
		material := make([]byte, 32)
		rand.Read(material) // crypto/rand never fails
		block, _ := aes.NewCipher(material)
		v.aead, _ = cipher.NewGCM(block)
	}
	k.versions = append(k.versions, v)
	return v
}

// version returns version id, or nil.
func (k *cryptoKey) version(id int) *keyVersion {
	if id < 1 || id > len(k.versions) {
		return nil
	}
	return k.versions[id-1]
}

// tick brings the key to time now: scheduled destructions that are due
// happen (the version becomes DESTROYED and loses its material), and a
// due rotation makes a new primary version dated at its rotation time.
// A clock jump over several rotation periods makes one version, as the
// service catches up once; next_rotation_time then moves past now by
// whole periods.
func (k *cryptoKey) tick(now time.Time) {
	for _, v := range k.versions {
		if v.state == kmspb.CryptoKeyVersion_DESTROY_SCHEDULED && !now.Before(v.destroyTime) {
			v.state, v.destroyEventTime, v.aead = kmspb.CryptoKeyVersion_DESTROYED, v.destroyTime, nil
		}
	}
	if k.purpose != kmspb.CryptoKey_ENCRYPT_DECRYPT || k.nextRotation.IsZero() || now.Before(k.nextRotation) {
		return
	}
	k.primary = k.newVersion(k.nextRotation).id
	if k.rotationPeriod <= 0 {
		k.nextRotation = time.Time{}
		return
	}
	for !k.nextRotation.After(now) {
		k.nextRotation = k.nextRotation.Add(k.rotationPeriod)
	}
}

// proto renders the key as the service returns it.
func (k *cryptoKey) proto() *kmspb.CryptoKey {
	p := &kmspb.CryptoKey{
		Name:       k.name,
		Purpose:    k.purpose,
		CreateTime: timestamppb.New(k.created),
		Labels:     k.labels,
		VersionTemplate: &kmspb.CryptoKeyVersionTemplate{
			ProtectionLevel: k.protection,
			Algorithm:       algorithmFor(k.purpose),
		},
		DestroyScheduledDuration: durationpb.New(k.destroyDuration),
	}
	if !k.nextRotation.IsZero() {
		p.NextRotationTime = timestamppb.New(k.nextRotation)
	}
	if k.rotationPeriod > 0 {
		p.RotationSchedule = &kmspb.CryptoKey_RotationPeriod{RotationPeriod: durationpb.New(k.rotationPeriod)}
	}
	if v := k.version(k.primary); v != nil {
		p.Primary = k.versionProto(v)
	}
	return p
}

func (k *cryptoKey) versionProto(v *keyVersion) *kmspb.CryptoKeyVersion {
	p := &kmspb.CryptoKeyVersion{
		Name:            versionName(k.name, v.id),
		State:           v.state,
		ProtectionLevel: k.protection,
		Algorithm:       algorithmFor(k.purpose),
		CreateTime:      timestamppb.New(v.created),
		GenerateTime:    timestamppb.New(v.created),
	}
	if !v.destroyTime.IsZero() {
		p.DestroyTime = timestamppb.New(v.destroyTime)
	}
	if !v.destroyEventTime.IsZero() {
		p.DestroyEventTime = timestamppb.New(v.destroyEventTime)
	}
	return p
}

// algorithmFor is the version algorithm of a key of that purpose: only
// ENCRYPT_DECRYPT keys have material here, the others are metadata.
func algorithmFor(p kmspb.CryptoKey_CryptoKeyPurpose) kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm {
	switch p {
	case kmspb.CryptoKey_ENCRYPT_DECRYPT:
		return kmspb.CryptoKeyVersion_GOOGLE_SYMMETRIC_ENCRYPTION
	case kmspb.CryptoKey_ASYMMETRIC_SIGN:
		return kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256
	case kmspb.CryptoKey_ASYMMETRIC_DECRYPT:
		return kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA256
	case kmspb.CryptoKey_MAC:
		return kmspb.CryptoKeyVersion_HMAC_SHA256
	}
	return kmspb.CryptoKeyVersion_CRYPTO_KEY_VERSION_ALGORITHM_UNSPECIFIED
}

// notFound is the service's answer for a resource that does not exist
// (to a caller allowed to see it).
func notFound(kind, name string) error {
	return status.Errorf(codes.NotFound, "%s %s not found.", kind, name)
}

// notEnabled is FAILED_PRECONDITION for a version that cannot be used.
func notEnabled(name string, st kmspb.CryptoKeyVersion_CryptoKeyVersionState) error {
	return withDetails(status.New(codes.FailedPrecondition,
		fmt.Sprintf("%s is not enabled, current state is: %s.", name, st)),
		preconditionFailure(name, "KEY_"+stateWord(st)))
}

// stateWord is the violation type word of a state: DISABLED, DESTROYED…
func stateWord(st kmspb.CryptoKeyVersion_CryptoKeyVersionState) string {
	return st.String()
}

// sortedKeys returns the map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
