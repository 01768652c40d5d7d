package gcpkmsemu

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"

	"cloud.google.com/go/iam/apiv1/iampb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Cloud KMS permissions the emulator checks.
const (
	PermUseToEncrypt = "cloudkms.cryptoKeyVersions.useToEncrypt"
	PermUseToDecrypt = "cloudkms.cryptoKeyVersions.useToDecrypt"
)

// adminPermissions are the management permissions (roles/cloudkms.admin).
var adminPermissions = []string{
	"cloudkms.keyRings.create", "cloudkms.keyRings.get", "cloudkms.keyRings.list",
	"cloudkms.keyRings.getIamPolicy", "cloudkms.keyRings.setIamPolicy",
	"cloudkms.cryptoKeys.create", "cloudkms.cryptoKeys.get", "cloudkms.cryptoKeys.list",
	"cloudkms.cryptoKeys.update", "cloudkms.cryptoKeys.getIamPolicy", "cloudkms.cryptoKeys.setIamPolicy",
	"cloudkms.cryptoKeyVersions.create", "cloudkms.cryptoKeyVersions.get", "cloudkms.cryptoKeyVersions.list",
	"cloudkms.cryptoKeyVersions.update", "cloudkms.cryptoKeyVersions.destroy", "cloudkms.cryptoKeyVersions.restore",
}

var viewerPermissions = []string{
	"cloudkms.keyRings.get", "cloudkms.keyRings.list", "cloudkms.cryptoKeys.get", "cloudkms.cryptoKeys.list",
	"cloudkms.cryptoKeyVersions.get", "cloudkms.cryptoKeyVersions.list",
}

// RolePermissions returns the Cloud KMS permissions of a role the emulator
// knows (the predefined roles' cloudkms.* permissions; the basic roles
// cover Cloud KMS only), or nil: bindings of other roles are refused.
func RolePermissions(role string) []string { return slices.Clone(roles[role]) }

// roles maps each role the emulator knows to its permissions.
var roles = map[string][]string{
	"roles/cloudkms.admin":                       adminPermissions,
	"roles/cloudkms.cryptoKeyEncrypterDecrypter": {PermUseToEncrypt, PermUseToDecrypt},
	"roles/cloudkms.cryptoKeyEncrypter":          {PermUseToEncrypt},
	"roles/cloudkms.cryptoKeyDecrypter":          {PermUseToDecrypt},
	"roles/cloudkms.viewer":                      viewerPermissions,
	"roles/owner":                                append(slices.Clone(adminPermissions), PermUseToEncrypt, PermUseToDecrypt),
	"roles/editor": slices.DeleteFunc(append(slices.Clone(adminPermissions), PermUseToEncrypt, PermUseToDecrypt),
		func(p string) bool { return strings.HasSuffix(p, "IamPolicy") }),
	"roles/viewer": append(slices.Clone(viewerPermissions), "cloudkms.keyRings.getIamPolicy", "cloudkms.cryptoKeys.getIamPolicy"),
}

// emptyEtag is the etag of a policy never set ("ACAB" in base64).
var emptyEtag = []byte{0x00, 0x20, 0x01}

func emptyPolicy() *iampb.Policy { return &iampb.Policy{Version: 1, Etag: slices.Clone(emptyEtag)} }

// policiesFor returns the policies that apply to n: its project's, its key
// ring's and its key's, those that exist. e.mu is held.
func (e *Emulator) policiesFor(n resourceName) []*iampb.Policy {
	var out []*iampb.Policy
	if p := e.projects[n.project]; p != nil {
		out = append(out, p.policy)
	}
	if n.ring != "" {
		if r := e.rings[n.ringName()]; r != nil {
			out = append(out, r.policy)
		}
	}
	if n.key != "" {
		if k := e.keys[n.keyName()]; k != nil {
			out = append(out, k.policy)
		}
	}
	return out
}

// hasPermission reports whether member holds perm on n through any
// binding of the policies that apply. e.mu is held.
func (e *Emulator) hasPermission(member, perm string, n resourceName) bool {
	for _, pol := range e.policiesFor(n) {
		for _, b := range pol.Bindings {
			if slices.Contains(roles[b.Role], perm) && slices.ContainsFunc(b.Members, func(m string) bool { return memberMatches(m, member) }) {
				return true
			}
		}
	}
	return false
}

// memberMatches reports whether a binding's member covers the caller's:
// the same member (emails case-insensitively), allUsers,
// allAuthenticatedUsers, or a workload identity pool's principalSet
// ".../workloadIdentityPools/P/*" for a principal of that pool.
func memberMatches(binding, member string) bool {
	if set, ok := strings.CutPrefix(binding, "principalSet://"); ok && strings.HasSuffix(set, "/*") {
		return strings.HasPrefix(member, "principal://"+strings.TrimSuffix(set, "*")+"subject/")
	}
	return binding == "allUsers" || binding == "allAuthenticatedUsers" || strings.EqualFold(binding, member)
}

// authorize returns PERMISSION_DENIED unless the caller holds perm on n;
// reqName is the name as the request gave it (the error names it). It is
// checked before the resource's existence, as the service does. e.mu is
// held.
func (e *Emulator) authorize(ctx context.Context, perm, reqName string, n resourceName) error {
	if !e.hasPermission(principalFrom(ctx).member(), perm, n) {
		return permissionDenied(perm, reqName)
	}
	return nil
}

// iamServer serves google.iam.v1.IAMPolicy for key rings and crypto keys.
type iamServer struct {
	iampb.UnimplementedIAMPolicyServer
	e *Emulator
}

// policyOf finds the resource (a key ring or a crypto key) and the noun
// of its permissions. e.mu is held.
func (e *Emulator) policyOf(resource string) (n resourceName, noun string, pol **iampb.Policy, err error) {
	if n, err = parseName(resource, "key"); err == nil {
		noun = "cryptoKeys"
		if k := e.keys[resource]; k != nil {
			pol = &k.policy
		}
		return n, noun, pol, nil
	}
	if n, err = parseName(resource, "ring"); err == nil {
		noun = "keyRings"
		if r := e.rings[resource]; r != nil {
			pol = &r.policy
		}
		return n, noun, pol, nil
	}
	return n, "", nil, invalidArgument("Resource name [%s] does not represent a valid key ring or crypto key.", resource)
}

// GetIamPolicy returns the resource's own policy (not inherited bindings).
func (s *iamServer) GetIamPolicy(ctx context.Context, req *iampb.GetIamPolicyRequest) (*iampb.Policy, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	n, noun, pol, err := e.policyOf(req.GetResource())
	if err != nil {
		return nil, err
	}
	if err := e.authorize(ctx, "cloudkms."+noun+".getIamPolicy", req.GetResource(), n); err != nil {
		return nil, err
	}
	if pol == nil {
		return nil, notFound(kindOf(noun), req.GetResource())
	}
	return proto.Clone(*pol).(*iampb.Policy), nil
}

// SetIamPolicy replaces the resource's policy: read-modify-write with the
// etag (a stale etag is ABORTED), known roles only, no conditions.
func (s *iamServer) SetIamPolicy(ctx context.Context, req *iampb.SetIamPolicyRequest) (*iampb.Policy, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	n, noun, pol, err := e.policyOf(req.GetResource())
	if err != nil {
		return nil, err
	}
	if err := e.authorize(ctx, "cloudkms."+noun+".setIamPolicy", req.GetResource(), n); err != nil {
		return nil, err
	}
	if pol == nil {
		return nil, notFound(kindOf(noun), req.GetResource())
	}
	in := req.GetPolicy()
	if in == nil {
		return nil, invalidArgument("Request contains an invalid argument: policy is required.")
	}
	if len(in.Etag) > 0 && !bytes.Equal(in.Etag, (*pol).Etag) {
		return nil, status.Error(codes.Aborted, "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.")
	}
	next, err := e.validPolicy(in)
	if err != nil {
		return nil, err
	}
	*pol = next
	return proto.Clone(next).(*iampb.Policy), nil
}

// validPolicy checks a policy's bindings and returns a copy with a new
// etag. e.mu is held.
func (e *Emulator) validPolicy(in *iampb.Policy) (*iampb.Policy, error) {
	out := &iampb.Policy{Version: 1, Etag: make([]byte, 8)}
	rand.Read(out.Etag[1:]) // crypto/rand never fails
	out.Etag[0] = 0x07
	for _, b := range in.GetBindings() {
		if b.Condition != nil {
			return nil, invalidArgument("gcpkmsemu: conditional role bindings are not emulated.")
		}
		if _, ok := roles[b.Role]; !ok {
			return nil, invalidArgument("Role %s is not supported for this resource.", b.Role)
		}
		for _, m := range b.Members {
			email, isSA := strings.CutPrefix(m, "serviceAccount:")
			switch {
			case isSA && e.accounts[strings.ToLower(email)] == nil:
				return nil, invalidArgument("Service account %s does not exist.", email)
			case !isSA && m != "allUsers" && m != "allAuthenticatedUsers" && !strings.Contains(m, ":"):
				return nil, invalidArgument("Invalid member %q: members take the form type:value (serviceAccount:…, user:…).", m)
			}
		}
		out.Bindings = append(out.Bindings, &iampb.Binding{Role: b.Role, Members: slices.Clone(b.Members)})
	}
	return out, nil
}

// TestIamPermissions returns the permissions asked for that the caller
// holds on the resource; it needs no permission itself.
func (s *iamServer) TestIamPermissions(ctx context.Context, req *iampb.TestIamPermissionsRequest) (*iampb.TestIamPermissionsResponse, error) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	n, _, _, err := e.policyOf(req.GetResource())
	if err != nil {
		return nil, err
	}
	member := principalFrom(ctx).member()
	resp := &iampb.TestIamPermissionsResponse{}
	for _, p := range req.GetPermissions() {
		if !strings.HasPrefix(p, "cloudkms.") {
			return nil, invalidArgument("Permission %s is not valid for this resource.", p)
		}
		if e.hasPermission(member, p, n) {
			resp.Permissions = append(resp.Permissions, p)
		}
	}
	return resp, nil
}

func kindOf(noun string) string {
	if noun == "keyRings" {
		return "KeyRing"
	}
	return "CryptoKey"
}

// AddBinding grants role to member on resource: a project id ("platform"
// or "projects/platform"), a key ring or a crypto key name. The project is
// created if needed; a key ring or key must exist.
func (e *Emulator) AddBinding(resource, role, member string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	pol, err := e.controlPolicy(resource)
	if err != nil {
		return err
	}
	next := proto.Clone(*pol).(*iampb.Policy)
	added := false
	for _, b := range next.Bindings {
		if b.Role == role {
			if !slices.Contains(b.Members, member) {
				b.Members = append(b.Members, member)
			}
			added = true
		}
	}
	if !added {
		next.Bindings = append(next.Bindings, &iampb.Binding{Role: role, Members: []string{member}})
	}
	v, err := e.validPolicy(next)
	if err != nil {
		return fmt.Errorf("gcpkmsemu: %s", status.Convert(err).Message())
	}
	*pol = v
	return nil
}

// RemoveBinding revokes role from member on resource (see AddBinding).
func (e *Emulator) RemoveBinding(resource, role, member string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	pol, err := e.controlPolicy(resource)
	if err != nil {
		return err
	}
	next := proto.Clone(*pol).(*iampb.Policy)
	for _, b := range next.Bindings {
		if b.Role == role {
			b.Members = slices.DeleteFunc(b.Members, func(m string) bool { return m == member })
		}
	}
	next.Bindings = slices.DeleteFunc(next.Bindings, func(b *iampb.Binding) bool { return len(b.Members) == 0 })
	v, err := e.validPolicy(next)
	if err != nil {
		return err
	}
	*pol = v
	return nil
}

func (e *Emulator) controlPolicy(resource string) (**iampb.Policy, error) {
	if id, ok := strings.CutPrefix(resource, "projects/"); ok && !strings.Contains(id, "/") {
		resource = id
	}
	if !strings.Contains(resource, "/") {
		p, err := e.ensureProject(resource, 0)
		if err != nil {
			return nil, err
		}
		return &p.policy, nil
	}
	_, _, pol, err := e.policyOf(resource)
	if err != nil {
		return nil, fmt.Errorf("gcpkmsemu: %s", status.Convert(err).Message())
	}
	if pol == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, resource)
	}
	return pol, nil
}

// ensureProject returns the project, creating it (with number, or a
// derived one when 0). e.mu is held.
func (e *Emulator) ensureProject(id string, number int64) (*project, error) {
	if !segPattern.MatchString(id) {
		return nil, fmt.Errorf("gcpkmsemu: project id %q: lowercase letters, digits and hyphens", id)
	}
	if p := e.projects[id]; p != nil {
		return p, nil
	}
	if number == 0 {
		number = int64(100000000000 + len(e.projects)*7919 + len(id))
	}
	p := &project{id: id, number: number, policy: emptyPolicy()}
	e.projects[id] = p
	return p, nil
}
