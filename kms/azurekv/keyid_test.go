package azurekv

import (
	"errors"
	"strings"
	"testing"
)

func TestParseKeyID(t *testing.T) {
	v := "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		in   string
		want KeyID
	}{
		{"https://contoso.vault.azure.net/keys/cmk", KeyID{Host: "contoso.vault.azure.net", Vault: "contoso", Name: "cmk", Cloud: CloudPublic}},
		{"https://Contoso.Vault.Azure.Net/keys/CMK/" + strings.ToUpper(v), KeyID{Host: "contoso.vault.azure.net", Vault: "contoso", Name: "CMK", Version: v, Cloud: CloudPublic}},
		{"https://contoso.vault.azure.net/keys/cmk/", KeyID{Host: "contoso.vault.azure.net", Vault: "contoso", Name: "cmk", Cloud: CloudPublic}},
		{"https://hsm-1.managedhsm.azure.net/keys/k/" + v, KeyID{Host: "hsm-1.managedhsm.azure.net", Vault: "hsm-1", Name: "k", Version: v, ManagedHSM: true, Cloud: CloudPublic}},
		{"https://contoso.privatelink.vaultcore.azure.net/keys/cmk", KeyID{Host: "contoso.privatelink.vaultcore.azure.net", Vault: "contoso", Name: "cmk", PrivateLink: true, Cloud: CloudPublic}},
		{"https://contoso.vault.azure.cn/keys/cmk", KeyID{Host: "contoso.vault.azure.cn", Vault: "contoso", Name: "cmk", Cloud: CloudChina}},
		{"https://contoso.vault.usgovcloudapi.net/keys/cmk", KeyID{Host: "contoso.vault.usgovcloudapi.net", Vault: "contoso", Name: "cmk", Cloud: CloudGovernment}},
		{"https://abc.vault.azure.net/keys/" + strings.Repeat("k", 127), KeyID{Host: "abc.vault.azure.net", Vault: "abc", Name: strings.Repeat("k", 127), Cloud: CloudPublic}},
	} {
		got, err := ParseKeyID(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseKeyID(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseKeyIDErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{" https://contoso.vault.azure.net/keys/cmk", "white space"},
		{"http://contoso.vault.azure.net/keys/cmk", "scheme must be https"},
		{"contoso.vault.azure.net/keys/cmk", "scheme must be https"},
		{"https://contoso.vault.azure.net:8443/keys/cmk", "port"},
		{"https://contoso.vault.azure.net/keys/cmk?api-version=7.4", "query"},
		{"https://contoso.vault.azure.net/keys/cmk#x", "fragment"},
		{"https://u@contoso.vault.azure.net/keys/cmk", "user name"},
		{"https://contoso.example.com/keys/cmk", "not a Key Vault"},
		{"https://contoso.vault.microsoftazure.de/keys/cmk", "not a Key Vault"},
		{"https://ab.vault.azure.net/keys/cmk", "3 to 24"},
		{"https://" + strings.Repeat("a", 25) + ".vault.azure.net/keys/cmk", "3 to 24"},
		{"https://1contoso.vault.azure.net/keys/cmk", "start with a letter"},
		{"https://contoso-.vault.azure.net/keys/cmk", "ends with '-'"},
		{"https://con--toso.vault.azure.net/keys/cmk", `"--"`},
		{"https://con_toso.vault.azure.net/keys/cmk", "letters, digits and '-'"},
		{"https://a.contoso.vault.azure.net/keys/cmk", "one DNS label"},
		{"https://contoso.vault.azure.net", "path is empty"},
		{"https://contoso.vault.azure.net/secrets/s", "names a secret"},
		{"https://contoso.vault.azure.net/certificates/c", "names a certificate"},
		{"https://contoso.vault.azure.net/deletedkeys/cmk", "deleted key"},
		{"https://contoso.vault.azure.net/foo/cmk", "must start with /keys/"},
		{"https://contoso.vault.azure.net/keys/", "key name is missing"},
		{"https://contoso.vault.azure.net/keys/my_key", "key name \"my_key\" has a '_'"},
		{"https://contoso.vault.azure.net/keys/" + strings.Repeat("k", 128), "1 to 127"},
		{"https://contoso.vault.azure.net/keys/cmk/123", "32 hexadecimal digits"},
		{"https://contoso.vault.azure.net/keys/cmk/" + strings.Repeat("g", 32), "32 hexadecimal digits"},
		{"https://contoso.vault.azure.net/keys/cmk/" + strings.Repeat("0", 32) + "/wrapkey", "segments"},
		{"https://contoso.vault.azure.net/keys/c%20k", "has a ' '"},
	} {
		_, err := ParseKeyID(tc.in)
		var ke *KeyIDError
		if !errors.As(err, &ke) {
			t.Errorf("ParseKeyID(%q) = %v, want a *KeyIDError", tc.in, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "https://contoso.vault.azure.net/keys/byok-cmk") {
			t.Errorf("ParseKeyID(%q) = %q; want it to say %q and show an example", tc.in, err, tc.want)
		}
	}
}

// FuzzParseKeyID: whatever parses prints canonically and parses back to the
// same KeyID; whatever fails, fails with a *KeyIDError.
func FuzzParseKeyID(f *testing.F) {
	for _, s := range []string{
		"https://contoso.vault.azure.net/keys/cmk",
		"https://contoso.vault.azure.net/keys/cmk/0123456789abcdef0123456789abcdef",
		"https://hsm.managedhsm.azure.net/keys/k/",
		"https://contoso.privatelink.vaultcore.azure.net/keys/cmk",
		"https://contoso.vault.azure.cn/keys/a-b",
		"http://x/keys/y", "https://contoso.vault.azure.net/secrets/s", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseKeyID(s)
		if err != nil {
			var ke *KeyIDError
			if !errors.As(err, &ke) || ke.Input != s {
				t.Fatalf("ParseKeyID(%q) error %v is not a *KeyIDError of the input", s, err)
			}
			return
		}
		again, err := ParseKeyID(id.String())
		if err != nil || again != id {
			t.Fatalf("ParseKeyID(%q) = %+v; its String %q parses to %+v, %v", s, id, id.String(), again, err)
		}
		if id.Versionless().WithVersion(id.Version) != id {
			t.Fatalf("Versionless/WithVersion do not round-trip %+v", id)
		}
	})
}
