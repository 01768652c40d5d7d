package gcpkmsemu

import (
	"context"
	"maps"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// kmsServer serves google.cloud.kms.v1.KeyManagementService: key rings,
// crypto keys and their versions (this file), Encrypt and Decrypt
// (crypto.go). Methods it does not list answer UNIMPLEMENTED.
type kmsServer struct {
	kmspb.UnimplementedKeyManagementServiceServer
	e *Emulator
}

// CreateKeyRing creates a key ring in a location of a project (the
// project is created on first use; any location id is taken).
func (s *kmsServer) CreateKeyRing(ctx context.Context, req *kmspb.CreateKeyRingRequest) (*kmspb.KeyRing, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	n, err := parseName(req.GetParent(), "location")
	if err != nil {
		return nil, err
	}
	if err := e.authorize(ctx, "cloudkms.keyRings.create", req.GetParent(), n); err != nil {
		return nil, err
	}
	if !idPattern.MatchString(req.GetKeyRingId()) {
		return nil, invalidArgument("Key ring id must match [a-zA-Z0-9_-]{1,63}, got %q.", req.GetKeyRingId())
	}
	n.ring = req.GetKeyRingId()
	return e.createRing(n)
}

// createRing creates the key ring n. e.mu is held.
func (e *Emulator) createRing(n resourceName) (*kmspb.KeyRing, error) {
	name := n.ringName()
	if e.rings[name] != nil {
		return nil, status.Errorf(codes.AlreadyExists, "KeyRing %s already exists.", name)
	}
	if _, err := e.ensureProject(n.project, 0); err != nil {
		return nil, invalidArgument("%v", err)
	}
	r := &keyRing{name: name, created: e.keyNow(), policy: emptyPolicy()}
	e.rings[name] = r
	return &kmspb.KeyRing{Name: name, CreateTime: timestamppb.New(r.created)}, nil
}

func (s *kmsServer) GetKeyRing(ctx context.Context, req *kmspb.GetKeyRingRequest) (*kmspb.KeyRing, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	n, err := parseName(req.GetName(), "ring")
	if err != nil {
		return nil, err
	}
	if err := e.authorize(ctx, "cloudkms.keyRings.get", req.GetName(), n); err != nil {
		return nil, err
	}
	r := e.rings[req.GetName()]
	if r == nil {
		return nil, notFound("KeyRing", req.GetName())
	}
	return &kmspb.KeyRing{Name: r.name, CreateTime: timestamppb.New(r.created)}, nil
}

// CreateCryptoKey creates a key and, unless skip_initial_version_creation,
// its first version, which becomes primary. Purposes other than
// ENCRYPT_DECRYPT are kept as metadata (their versions have no material);
// protection levels SOFTWARE and HSM are taken.
func (s *kmsServer) CreateCryptoKey(ctx context.Context, req *kmspb.CreateCryptoKeyRequest) (*kmspb.CryptoKey, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	n, err := parseName(req.GetParent(), "ring")
	if err != nil {
		return nil, err
	}
	if err := e.authorize(ctx, "cloudkms.cryptoKeys.create", req.GetParent(), n); err != nil {
		return nil, err
	}
	if e.rings[req.GetParent()] == nil {
		return nil, notFound("KeyRing", req.GetParent())
	}
	if !idPattern.MatchString(req.GetCryptoKeyId()) {
		return nil, invalidArgument("Crypto key id must match [a-zA-Z0-9_-]{1,63}, got %q.", req.GetCryptoKeyId())
	}
	n.key = req.GetCryptoKeyId()
	k, err := e.createKey(n, req.GetCryptoKey(), req.GetSkipInitialVersionCreation())
	if err != nil {
		return nil, err
	}
	return k.proto(), nil
}

// createKey validates spec and creates key n. e.mu is held.
func (e *Emulator) createKey(n resourceName, spec *kmspb.CryptoKey, skipVersion bool) (*cryptoKey, error) {
	name := n.keyName()
	if e.keys[name] != nil {
		return nil, status.Errorf(codes.AlreadyExists, "CryptoKey %s already exists.", name)
	}
	now := e.keyNow()
	k := &cryptoKey{
		name: name, created: now, purpose: spec.GetPurpose(), protection: kmspb.ProtectionLevel_SOFTWARE,
		labels: maps.Clone(spec.GetLabels()), destroyDuration: DefaultDestroyScheduledDuration, policy: emptyPolicy(),
	}
	if k.purpose == kmspb.CryptoKey_CRYPTO_KEY_PURPOSE_UNSPECIFIED {
		return nil, invalidArgument("The request must specify crypto_key.purpose.")
	}
	switch pl := spec.GetVersionTemplate().GetProtectionLevel(); pl {
	case kmspb.ProtectionLevel_PROTECTION_LEVEL_UNSPECIFIED, kmspb.ProtectionLevel_SOFTWARE, kmspb.ProtectionLevel_HSM:
		if pl != kmspb.ProtectionLevel_PROTECTION_LEVEL_UNSPECIFIED {
			k.protection = pl
		}
	default:
		return nil, status.Errorf(codes.Unimplemented, "gcpkmsemu: protection level %s is not emulated (SOFTWARE and HSM are).", pl)
	}
	if alg := spec.GetVersionTemplate().GetAlgorithm(); k.purpose == kmspb.CryptoKey_ENCRYPT_DECRYPT &&
		alg != kmspb.CryptoKeyVersion_CRYPTO_KEY_VERSION_ALGORITHM_UNSPECIFIED && alg != kmspb.CryptoKeyVersion_GOOGLE_SYMMETRIC_ENCRYPTION {
		return nil, status.Errorf(codes.Unimplemented, "gcpkmsemu: algorithm %s is not emulated (GOOGLE_SYMMETRIC_ENCRYPTION is).", alg)
	}
	if d := spec.GetDestroyScheduledDuration(); d != nil {
		if d.AsDuration() < 24*time.Hour || d.AsDuration() > 120*24*time.Hour {
			return nil, invalidArgument("destroy_scheduled_duration must be between 24 hours and 120 days.")
		}
		k.destroyDuration = d.AsDuration()
	}
	if err := k.setRotation(spec, now, true, true); err != nil {
		return nil, err
	}
	if !skipVersion {
		v := k.newVersion(now)
		if k.purpose == kmspb.CryptoKey_ENCRYPT_DECRYPT {
			k.primary = v.id // only symmetric keys have a primary version
		}
	}
	e.keys[name] = k
	return k, nil
}

// setRotation applies the rotation fields of spec that the mask names:
// a period of 24 to 876,000 hours, ENCRYPT_DECRYPT keys only, and a
// next_rotation_time in the future, which a period needs (as the API
// requires; the seed fills it in).
func (k *cryptoKey) setRotation(spec *kmspb.CryptoKey, now time.Time, period, next bool) error {
	if period {
		k.rotationPeriod = 0
		if p := spec.GetRotationPeriod(); p != nil {
			if k.purpose != kmspb.CryptoKey_ENCRYPT_DECRYPT {
				return invalidArgument("Automatic rotation is only supported for keys with purpose ENCRYPT_DECRYPT.")
			}
			if p.AsDuration() < minRotationPeriod || p.AsDuration() > 876000*time.Hour {
				return invalidArgument("rotation_period must be at least 24 hours and at most 876,000 hours.")
			}
			k.rotationPeriod = p.AsDuration()
		}
	}
	if next {
		k.nextRotation = time.Time{}
		if t := spec.GetNextRotationTime(); t != nil {
			if t.AsTime().Before(now) {
				return invalidArgument("next_rotation_time must be in the future.")
			}
			k.nextRotation = t.AsTime()
		}
	}
	if k.rotationPeriod > 0 && k.nextRotation.IsZero() {
		return invalidArgument("next_rotation_time must be set when rotation_period is set.")
	}
	return nil
}

// lookupKey authorizes perm on the key named name (as given) and returns
// it, brought to the key clock. e.mu is held.
func (e *Emulator) lookupKey(ctx context.Context, perm, name string) (*cryptoKey, error) {
	n, err := parseName(name, "key")
	if err != nil {
		return nil, err
	}
	if err := e.authorize(ctx, perm, name, n); err != nil {
		return nil, err
	}
	k := e.keys[name]
	if k == nil {
		return nil, notFound("CryptoKey", name)
	}
	k.tick(e.keyNow())
	return k, nil
}

// lookupVersion is lookupKey for a version name.
func (e *Emulator) lookupVersion(ctx context.Context, perm, name string) (*cryptoKey, *keyVersion, error) {
	n, err := parseName(name, "version")
	if err != nil {
		return nil, nil, err
	}
	if err := e.authorize(ctx, perm, name, n); err != nil {
		return nil, nil, err
	}
	k := e.keys[n.keyName()]
	if k == nil {
		return nil, nil, notFound("CryptoKeyVersion", name)
	}
	k.tick(e.keyNow())
	v := k.version(n.version)
	if v == nil {
		return nil, nil, notFound("CryptoKeyVersion", name)
	}
	return k, v, nil
}

func (s *kmsServer) GetCryptoKey(ctx context.Context, req *kmspb.GetCryptoKeyRequest) (*kmspb.CryptoKey, error) {
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	k, err := s.e.lookupKey(ctx, "cloudkms.cryptoKeys.get", req.GetName())
	if err != nil {
		return nil, err
	}
	return k.proto(), nil
}

// UpdateCryptoKey changes labels, rotation_period and next_rotation_time
// (the fields of update_mask; other fields are INVALID_ARGUMENT).
func (s *kmsServer) UpdateCryptoKey(ctx context.Context, req *kmspb.UpdateCryptoKeyRequest) (*kmspb.CryptoKey, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	k, err := e.lookupKey(ctx, "cloudkms.cryptoKeys.update", req.GetCryptoKey().GetName())
	if err != nil {
		return nil, err
	}
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return nil, invalidArgument("The request must specify update_mask.")
	}
	var period, next, labels bool
	for _, p := range paths {
		switch p {
		case "rotation_period", "rotationPeriod":
			period = true
		case "next_rotation_time", "nextRotationTime":
			next = true
		case "labels":
			labels = true
		default:
			return nil, invalidArgument("gcpkmsemu: update_mask path %q is not supported (labels, rotation_period, next_rotation_time are).", p)
		}
	}
	saved := *k
	if err := k.setRotation(req.GetCryptoKey(), e.keyNow(), period, next); err != nil {
		*k = saved
		return nil, err
	}
	if labels {
		k.labels = maps.Clone(req.GetCryptoKey().GetLabels())
	}
	return k.proto(), nil
}

// UpdateCryptoKeyPrimaryVersion makes a version primary; a DESTROYED or
// DESTROY_SCHEDULED version cannot be.
func (s *kmsServer) UpdateCryptoKeyPrimaryVersion(ctx context.Context, req *kmspb.UpdateCryptoKeyPrimaryVersionRequest) (*kmspb.CryptoKey, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	k, err := e.lookupKey(ctx, "cloudkms.cryptoKeys.update", req.GetName())
	if err != nil {
		return nil, err
	}
	if k.purpose != kmspb.CryptoKey_ENCRYPT_DECRYPT {
		return nil, status.Errorf(codes.FailedPrecondition, "%s does not have purpose ENCRYPT_DECRYPT; only symmetric keys have a primary version.", k.name)
	}
	id, err := strconv.Atoi(req.GetCryptoKeyVersionId())
	v := k.version(id)
	if err != nil || v == nil {
		return nil, notFound("CryptoKeyVersion", versionName(k.name, id))
	}
	if v.state == kmspb.CryptoKeyVersion_DESTROYED || v.state == kmspb.CryptoKeyVersion_DESTROY_SCHEDULED {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is in state %s and cannot be made primary.", versionName(k.name, id), v.state)
	}
	k.primary = id
	return k.proto(), nil
}

// CreateCryptoKeyVersion adds an ENABLED version; it does not become
// primary (UpdateCryptoKeyPrimaryVersion does that), as in the service.
func (s *kmsServer) CreateCryptoKeyVersion(ctx context.Context, req *kmspb.CreateCryptoKeyVersionRequest) (*kmspb.CryptoKeyVersion, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	n, err := parseName(req.GetParent(), "key")
	if err != nil {
		return nil, err
	}
	if err := e.authorize(ctx, "cloudkms.cryptoKeyVersions.create", req.GetParent(), n); err != nil {
		return nil, err
	}
	k := e.keys[req.GetParent()]
	if k == nil {
		return nil, notFound("CryptoKey", req.GetParent())
	}
	k.tick(e.keyNow())
	v := k.newVersion(e.keyNow())
	if k.primary == 0 && k.purpose == kmspb.CryptoKey_ENCRYPT_DECRYPT {
		k.primary = v.id // the first version of a key made without one
	}
	return k.versionProto(v), nil
}

func (s *kmsServer) GetCryptoKeyVersion(ctx context.Context, req *kmspb.GetCryptoKeyVersionRequest) (*kmspb.CryptoKeyVersion, error) {
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	k, v, err := s.e.lookupVersion(ctx, "cloudkms.cryptoKeyVersions.get", req.GetName())
	if err != nil {
		return nil, err
	}
	return k.versionProto(v), nil
}

// ListCryptoKeyVersions lists versions oldest first, page_size at a time
// (default and maximum 1000); filter and order_by are not emulated.
func (s *kmsServer) ListCryptoKeyVersions(ctx context.Context, req *kmspb.ListCryptoKeyVersionsRequest) (*kmspb.ListCryptoKeyVersionsResponse, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if req.GetFilter() != "" || req.GetOrderBy() != "" {
		return nil, status.Error(codes.Unimplemented, "gcpkmsemu: filter and order_by are not emulated.")
	}
	n, err := parseName(req.GetParent(), "key")
	if err != nil {
		return nil, err
	}
	if err := e.authorize(ctx, "cloudkms.cryptoKeyVersions.list", req.GetParent(), n); err != nil {
		return nil, err
	}
	k := e.keys[req.GetParent()]
	if k == nil {
		return nil, notFound("CryptoKey", req.GetParent())
	}
	k.tick(e.keyNow())
	start, end, next, err := page(req.GetPageToken(), int(req.GetPageSize()), len(k.versions))
	if err != nil {
		return nil, err
	}
	resp := &kmspb.ListCryptoKeyVersionsResponse{NextPageToken: next, TotalSize: int32(len(k.versions))}
	for _, v := range k.versions[start:end] {
		resp.CryptoKeyVersions = append(resp.CryptoKeyVersions, k.versionProto(v))
	}
	return resp, nil
}

// page turns a page token (an offset here) and size into a slice range.
func page(token string, size, total int) (start, end int, next string, err error) {
	if token != "" {
		o, ok := strings.CutPrefix(token, "o")
		if start, err = strconv.Atoi(o); !ok || err != nil || start < 0 || start > total {
			return 0, 0, "", invalidArgument("Invalid page token.")
		}
	}
	if size <= 0 || size > 1000 {
		size = 1000
	}
	end = min(start+size, total)
	if end < total {
		next = "o" + strconv.Itoa(end)
	}
	return start, end, next, nil
}
