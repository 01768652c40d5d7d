package gcpkms

import (
	"errors"
	"strings"
	"testing"
)

func TestParseKeyName(t *testing.T) {
	for _, s := range []string{keyA, keyA + "/cryptoKeyVersions/12", "projects/my-project-123/locations/europe-west1/keyRings/r_1/cryptoKeys/K-2"} {
		n, err := ParseKeyName(s)
		if err != nil || n.String() != s {
			t.Errorf("ParseKeyName(%q) = %v, %v", s, n, err)
		}
	}
	for _, s := range []string{"", ring, keyA + "/", keyA + "/cryptoKeyVersions/0", keyA + "/cryptoKeyVersions/01",
		keyA + "/cryptoKeyVersions/x", " " + keyA, "https://cloudkms.googleapis.com/v1/" + keyA,
		"projects/p/locations/global/keyRing/byok/cryptoKeys/k", "projects/p/locations/global/keyRings/b y/cryptoKeys/k",
		"projects/p/locations/Global/keyRings/byok/cryptoKeys/k"} {
		_, err := ParseKeyName(s)
		var ne *NameError
		if !errors.As(err, &ne) || !strings.Contains(err.Error(), "projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY") {
			t.Errorf("ParseKeyName(%q) = %v, want a *NameError showing the form", s, err)
		}
	}
	n, _ := ParseKeyName(keyA + "/cryptoKeyVersions/3")
	if n.Key() != keyA || n.Version != 3 {
		t.Errorf("Key() = %s, Version %d", n.Key(), n.Version)
	}
}
