package gcpkmsemu

import (
	"context"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// UpdateCryptoKeyVersion changes a version's state between ENABLED and
// DISABLED (update_mask "state"; other fields are not emulated).
func (s *kmsServer) UpdateCryptoKeyVersion(ctx context.Context, req *kmspb.UpdateCryptoKeyVersionRequest) (*kmspb.CryptoKeyVersion, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	in := req.GetCryptoKeyVersion()
	k, v, err := e.lookupVersion(ctx, "cloudkms.cryptoKeyVersions.update", in.GetName())
	if err != nil {
		return nil, err
	}
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) != 1 || paths[0] != "state" {
		return nil, invalidArgument("gcpkmsemu: update_mask must be [state]; other fields of a version are not emulated.")
	}
	want := in.GetState()
	if want != kmspb.CryptoKeyVersion_ENABLED && want != kmspb.CryptoKeyVersion_DISABLED {
		return nil, invalidArgument("The state of a CryptoKeyVersion can only be updated to ENABLED or DISABLED, not %s.", want)
	}
	if v.state != kmspb.CryptoKeyVersion_ENABLED && v.state != kmspb.CryptoKeyVersion_DISABLED {
		return nil, withDetails(status.Newf(codes.FailedPrecondition, "%s is in state %s; only ENABLED and DISABLED versions can change state this way.",
			versionName(k.name, v.id), v.state), preconditionFailure(versionName(k.name, v.id), "KEY_"+stateWord(v.state)))
	}
	v.state = want
	return k.versionProto(v), nil
}

// DestroyCryptoKeyVersion schedules an ENABLED or DISABLED version for
// destruction: it becomes DESTROY_SCHEDULED with destroy_time the key's
// destroy_scheduled_duration ahead on the key clock, and DESTROYED (its
// material gone) once the clock passes that time.
func (s *kmsServer) DestroyCryptoKeyVersion(ctx context.Context, req *kmspb.DestroyCryptoKeyVersionRequest) (*kmspb.CryptoKeyVersion, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	k, v, err := e.lookupVersion(ctx, "cloudkms.cryptoKeyVersions.destroy", req.GetName())
	if err != nil {
		return nil, err
	}
	if v.state != kmspb.CryptoKeyVersion_ENABLED && v.state != kmspb.CryptoKeyVersion_DISABLED {
		return nil, withDetails(status.Newf(codes.FailedPrecondition, "%s is in state %s and cannot be scheduled for destruction.",
			req.GetName(), v.state), preconditionFailure(req.GetName(), "KEY_"+stateWord(v.state)))
	}
	v.state = kmspb.CryptoKeyVersion_DESTROY_SCHEDULED
	v.destroyTime = e.keyNow().Add(k.destroyDuration)
	return k.versionProto(v), nil
}

// RestoreCryptoKeyVersion takes a DESTROY_SCHEDULED version back to
// DISABLED and clears its destroy_time.
func (s *kmsServer) RestoreCryptoKeyVersion(ctx context.Context, req *kmspb.RestoreCryptoKeyVersionRequest) (*kmspb.CryptoKeyVersion, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	k, v, err := e.lookupVersion(ctx, "cloudkms.cryptoKeyVersions.restore", req.GetName())
	if err != nil {
		return nil, err
	}
	if v.state != kmspb.CryptoKeyVersion_DESTROY_SCHEDULED {
		return nil, withDetails(status.Newf(codes.FailedPrecondition, "%s is in state %s; only a DESTROY_SCHEDULED version can be restored.",
			req.GetName(), v.state), preconditionFailure(req.GetName(), "KEY_"+stateWord(v.state)))
	}
	v.state, v.destroyTime = kmspb.CryptoKeyVersion_DISABLED, time.Time{}
	return k.versionProto(v), nil
}

// ListKeyRings lists the key rings of a location by name.
func (s *kmsServer) ListKeyRings(ctx context.Context, req *kmspb.ListKeyRingsRequest) (*kmspb.ListKeyRingsResponse, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if req.GetFilter() != "" || req.GetOrderBy() != "" {
		return nil, status.Error(codes.Unimplemented, "gcpkmsemu: filter and order_by are not emulated.")
	}
	n, err := parseName(req.GetParent(), "location")
	if err != nil {
		return nil, err
	}
	if err := e.authorize(ctx, "cloudkms.keyRings.list", req.GetParent(), n); err != nil {
		return nil, err
	}
	var rings []*keyRing
	for _, name := range sortedKeys(e.rings) {
		if r := e.rings[name]; len(name) > len(req.GetParent()) && name[:len(req.GetParent())+1] == req.GetParent()+"/" {
			rings = append(rings, r)
		}
	}
	start, end, next, err := page(req.GetPageToken(), int(req.GetPageSize()), len(rings))
	if err != nil {
		return nil, err
	}
	resp := &kmspb.ListKeyRingsResponse{NextPageToken: next, TotalSize: int32(len(rings))}
	for _, r := range rings[start:end] {
		resp.KeyRings = append(resp.KeyRings, &kmspb.KeyRing{Name: r.name, CreateTime: timestamppb.New(r.created)})
	}
	return resp, nil
}

// ListCryptoKeys lists the keys of a key ring by name.
func (s *kmsServer) ListCryptoKeys(ctx context.Context, req *kmspb.ListCryptoKeysRequest) (*kmspb.ListCryptoKeysResponse, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if req.GetFilter() != "" || req.GetOrderBy() != "" {
		return nil, status.Error(codes.Unimplemented, "gcpkmsemu: filter and order_by are not emulated.")
	}
	n, err := parseName(req.GetParent(), "ring")
	if err != nil {
		return nil, err
	}
	if err := e.authorize(ctx, "cloudkms.cryptoKeys.list", req.GetParent(), n); err != nil {
		return nil, err
	}
	if e.rings[req.GetParent()] == nil {
		return nil, notFound("KeyRing", req.GetParent())
	}
	var keys []*cryptoKey
	prefix := req.GetParent() + "/cryptoKeys/"
	for _, name := range sortedKeys(e.keys) {
		if len(name) > len(prefix) && name[:len(prefix)] == prefix {
			keys = append(keys, e.keys[name])
		}
	}
	start, end, next, err := page(req.GetPageToken(), int(req.GetPageSize()), len(keys))
	if err != nil {
		return nil, err
	}
	resp := &kmspb.ListCryptoKeysResponse{NextPageToken: next, TotalSize: int32(len(keys))}
	for _, k := range keys[start:end] {
		k.tick(e.keyNow())
		resp.CryptoKeys = append(resp.CryptoKeys, k.proto())
	}
	return resp, nil
}
