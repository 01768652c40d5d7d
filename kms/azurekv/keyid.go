package azurekv

import (
	"fmt"
	"net/url"
	"strings"
)

// Cloud names an Azure cloud, as told by a key identifier's host name.
type Cloud string

// The clouds whose Key Vault host names [ParseKeyID] accepts.
const (
	CloudPublic     Cloud = "AzurePublic"
	CloudChina      Cloud = "AzureChina"
	CloudGovernment Cloud = "AzureUSGovernment"
)

// KeyID is a parsed Azure Key Vault or Managed HSM key identifier.
type KeyID struct {
	// Host is the vault's host name as given, in lower case, e.g.
	// "contoso.vault.azure.net" or "contoso.privatelink.vaultcore.azure.net".
	Host string
	// Vault is the vault's (or Managed HSM's) name, in lower case.
	Vault string
	// Name is the key's name and Version its version ("" when versionless).
	Name, Version string
	// ManagedHSM is set for a Managed HSM host, PrivateLink for a private
	// endpoint host.
	ManagedHSM, PrivateLink bool
	// Cloud is the Azure cloud the host belongs to.
	Cloud Cloud
}

// vaultDomain is one accepted Key Vault DNS suffix.
type vaultDomain struct {
	suffix     string
	cloud      Cloud
	hsm, plink bool
}

var vaultDomains = []vaultDomain{
	{suffix: ".vault.azure.net", cloud: CloudPublic},
	{suffix: ".managedhsm.azure.net", cloud: CloudPublic, hsm: true},
	{suffix: ".privatelink.vaultcore.azure.net", cloud: CloudPublic, plink: true},
	{suffix: ".privatelink.managedhsm.azure.net", cloud: CloudPublic, hsm: true, plink: true},
	{suffix: ".vault.azure.cn", cloud: CloudChina},
	{suffix: ".managedhsm.azure.cn", cloud: CloudChina, hsm: true},
	{suffix: ".privatelink.vaultcore.azure.cn", cloud: CloudChina, plink: true},
	{suffix: ".vault.usgovcloudapi.net", cloud: CloudGovernment},
	{suffix: ".managedhsm.usgovcloudapi.net", cloud: CloudGovernment, hsm: true},
	{suffix: ".privatelink.vaultcore.usgovcloudapi.net", cloud: CloudGovernment, plink: true},
}

const keyIDExample = "https://contoso.vault.azure.net/keys/byok-cmk (or .../keys/byok-cmk/0123456789abcdef0123456789abcdef to pin a version)"

// KeyIDError says why a string is not a key identifier, and shows a
// correct one.
type KeyIDError struct {
	Input  string // the rejected identifier
	Reason string // what is wrong, e.g. "the key name has a '_'"
}

func (e *KeyIDError) Error() string {
	return fmt.Sprintf("azurekv: %q is not a Key Vault key identifier: %s; expected a key identifier such as %s",
		e.Input, e.Reason, keyIDExample)
}

// ParseKeyID parses a key identifier:
//
//	https://{vault}.vault.azure.net/keys/{name}[/{version}]
//
// and the same with a Managed HSM host ({hsm}.managedhsm.azure.net), a
// private-endpoint host ({vault}.privatelink.vaultcore.azure.net) or a
// sovereign cloud's suffix (vault.azure.cn, vault.usgovcloudapi.net).
// Vault names have 3–24 characters of letters, digits and '-', start with a
// letter, end with a letter or digit and have no "--"; key names 1–127
// letters, digits and '-'; versions 32 hexadecimal digits. A trailing '/'
// is allowed. Any other form fails with a [*KeyIDError].
func ParseKeyID(s string) (KeyID, error) {
	fail := func(format string, args ...any) (KeyID, error) {
		return KeyID{}, &KeyIDError{Input: s, Reason: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return fail("it is empty")
	}
	if strings.TrimSpace(s) != s {
		return fail("it has leading or trailing white space")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fail("it is not a URL")
	}
	switch {
	case u.Scheme != "https":
		return fail("the scheme must be https")
	case u.Opaque != "" || u.Host == "":
		return fail("it has no host name")
	case u.User != nil:
		return fail("it has a user name")
	case u.Port() != "":
		return fail("it has a port; Key Vault is served on the default HTTPS port")
	case u.RawQuery != "" || u.ForceQuery:
		return fail("it has a query string (%q)", u.RawQuery)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fail("it has a fragment")
	case u.RawPath != "":
		return fail("its path has escaped characters")
	}
	host := strings.ToLower(u.Hostname())
	var dom *vaultDomain
	for i := range vaultDomains {
		if strings.HasSuffix(host, vaultDomains[i].suffix) {
			dom = &vaultDomains[i]
			break
		}
	}
	if dom == nil {
		return fail("the host %q is not a Key Vault or Managed HSM host (*.vault.azure.net, *.managedhsm.azure.net, *.privatelink.vaultcore.azure.net, *.vault.azure.cn, *.vault.usgovcloudapi.net)", host)
	}
	vault := strings.TrimSuffix(host, dom.suffix)
	if reason := checkVaultName(vault); reason != "" {
		return fail("the vault name %q %s", vault, reason)
	}

	path := strings.TrimSuffix(u.Path, "/")
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if !strings.HasPrefix(path, "/") || segs[0] == "" {
		return fail("the path is empty; it must be /keys/{name}[/{version}]")
	}
	switch strings.ToLower(segs[0]) {
	case "keys":
	case "secrets", "certificates":
		return fail("it names a %s, not a key; byok needs a key (Keys blade of the vault)", strings.TrimSuffix(segs[0], "s"))
	case "deletedkeys":
		return fail("it names a deleted key; recover the key first (Keys > Manage deleted keys)")
	default:
		return fail("the path must start with /keys/, not /%s/", segs[0])
	}
	if len(segs) < 2 || segs[1] == "" {
		return fail("the key name is missing")
	}
	if len(segs) > 3 {
		return fail("the path has %d segments after /keys/; expected {name} or {name}/{version}", len(segs)-1)
	}
	name := segs[1]
	if reason := checkKeyName(name); reason != "" {
		return fail("the key name %q %s", name, reason)
	}
	version := ""
	if len(segs) == 3 {
		version = segs[2]
		if reason := checkVersion(version); reason != "" {
			return fail("the key version %q %s", version, reason)
		}
	}
	return KeyID{Host: host, Vault: vault, Name: name, Version: strings.ToLower(version),
		ManagedHSM: dom.hsm, PrivateLink: dom.plink, Cloud: dom.cloud}, nil
}

func checkVaultName(v string) string {
	switch {
	case v == "":
		return "is empty"
	case strings.Contains(v, "."):
		return "has a '.'; vault names are one DNS label"
	case len(v) < 3 || len(v) > 24:
		return fmt.Sprintf("has %d characters; vault names have 3 to 24", len(v))
	case v[0] < 'a' || v[0] > 'z':
		return "does not start with a letter"
	case v[len(v)-1] == '-':
		return "ends with '-'"
	case strings.Contains(v, "--"):
		return "has \"--\""
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Sprintf("has a %q; vault names have letters, digits and '-'", c)
		}
	}
	return ""
}

func checkKeyName(n string) string {
	if len(n) > 127 {
		return fmt.Sprintf("has %d characters; key names have 1 to 127", len(n))
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Sprintf("has a %q; key names have letters, digits and '-'", c)
		}
	}
	return ""
}

func checkVersion(v string) string {
	if len(v) != 32 {
		return fmt.Sprintf("has %d characters; versions have 32 hexadecimal digits", len(v))
	}
	for _, c := range v {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return fmt.Sprintf("has a %q; versions have 32 hexadecimal digits", c)
		}
	}
	return ""
}

// VaultURL returns the vault's base URL, e.g. "https://contoso.vault.azure.net".
func (k KeyID) VaultURL() string { return "https://" + k.Host }

// String returns the identifier in canonical form (lower-case host and
// version, no trailing slash).
func (k KeyID) String() string {
	s := k.VaultURL() + "/keys/" + k.Name
	if k.Version != "" {
		s += "/" + k.Version
	}
	return s
}

// Versionless returns k without its version.
func (k KeyID) Versionless() KeyID {
	k.Version = ""
	return k
}

// WithVersion returns k pinned to version.
func (k KeyID) WithVersion(version string) KeyID {
	k.Version = strings.ToLower(version)
	return k
}
