package gcpkms

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// KeyName is a parsed Cloud KMS resource name: a crypto key
// (projects/P/locations/L/keyRings/R/cryptoKeys/K), whose primary version
// Wrap follows, or one of its versions (…/cryptoKeyVersions/N), which
// pins it.
type KeyName struct {
	Project, Location, KeyRing, CryptoKey string
	Version                               int // 0: the crypto key itself
}

// NameError reports a resource name that is not a crypto key's or a
// version's. Its message says which part is wrong and shows the form.
type NameError struct {
	Name   string
	Reason string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("gcpkms: %q is not a Cloud KMS key name: %s; enter projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY "+
		"(Security > Key Management > the key > Copy resource name), or a version of it (…/cryptoKeyVersions/N)", e.Name, e.Reason)
}

var (
	projectRE  = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[a-z0-9.:-]{1,63}$`)
	locationRE = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)
	idRE       = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,63}$`)
)

// ParseKeyName parses a crypto key or crypto key version resource name.
// It fails with a [*NameError] for anything else (a key ring, a trailing
// slash, a version 0, spaces, an https:// URL…).
func ParseKeyName(s string) (KeyName, error) {
	bad := func(why string) (KeyName, error) { return KeyName{}, &NameError{Name: s, Reason: why} }
	if s != strings.TrimSpace(s) {
		return bad("it has leading or trailing spaces")
	}
	p := strings.Split(s, "/")
	if len(p) != 8 && len(p) != 10 {
		return bad(fmt.Sprintf("it has %d parts separated by '/', not 8 (a key) or 10 (a version)", len(p)))
	}
	for i, w := range []string{"projects", "locations", "keyRings", "cryptoKeys", "cryptoKeyVersions"} {
		if 2*i < len(p) && p[2*i] != w {
			return bad(fmt.Sprintf("part %d is %q, not %q", 2*i+1, p[2*i], w))
		}
	}
	n := KeyName{Project: p[1], Location: p[3], KeyRing: p[5], CryptoKey: p[7]}
	switch {
	case !projectRE.MatchString(n.Project):
		return bad(fmt.Sprintf("the project id %q is not a project id", n.Project))
	case !locationRE.MatchString(n.Location):
		return bad(fmt.Sprintf("the location %q is not a location such as global or europe-west1", n.Location))
	case !idRE.MatchString(n.KeyRing):
		return bad(fmt.Sprintf("the key ring id %q is not 1 to 63 letters, digits, '-' or '_'", n.KeyRing))
	case !idRE.MatchString(n.CryptoKey):
		return bad(fmt.Sprintf("the key id %q is not 1 to 63 letters, digits, '-' or '_'", n.CryptoKey))
	}
	if len(p) == 10 {
		v, err := strconv.Atoi(p[9])
		if err != nil || v < 1 || strconv.Itoa(v) != p[9] {
			return bad(fmt.Sprintf("the version %q is not a number from 1", p[9]))
		}
		n.Version = v
	}
	return n, nil
}

// Key returns the crypto key's name (without a version).
func (n KeyName) Key() string {
	return "projects/" + n.Project + "/locations/" + n.Location + "/keyRings/" + n.KeyRing + "/cryptoKeys/" + n.CryptoKey
}

// String returns the name as parsed.
func (n KeyName) String() string {
	if n.Version == 0 {
		return n.Key()
	}
	return n.Key() + "/cryptoKeyVersions/" + strconv.Itoa(n.Version)
}
