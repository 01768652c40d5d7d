package gcpkmsemu

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// resourceName is a parsed Cloud KMS resource name, as deep as it goes:
// projects/P/locations/L[/keyRings/R[/cryptoKeys/K[/cryptoKeyVersions/V]]].
type resourceName struct {
	project, location, ring, key string
	version                      int // 0: not a version name
}

var (
	// idPattern is the form of key ring and crypto key ids.
	idPattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,63}$`)
	// segPattern is the form of project and location ids here.
	segPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

// parseName parses name down to the given depth: "location", "ring",
// "key", "version", or "keyOrVersion". A malformed name is INVALID_ARGUMENT.
func parseName(name, depth string) (resourceName, error) {
	parts := strings.Split(name, "/")
	var n resourceName
	bad := func() (resourceName, error) {
		return resourceName{}, status.Errorf(codes.InvalidArgument, "Resource name [%s] does not represent a valid %s.", name, depthNoun(depth))
	}
	want := map[string][]int{"location": {4}, "ring": {6}, "key": {8}, "version": {10}, "keyOrVersion": {8, 10}}[depth]
	ok := false
	for _, w := range want {
		ok = ok || len(parts) == w
	}
	if !ok || parts[0] != "projects" || parts[2] != "locations" {
		return bad()
	}
	n.project, n.location = parts[1], parts[3]
	if !segPattern.MatchString(n.project) || !segPattern.MatchString(n.location) {
		return bad()
	}
	if len(parts) >= 6 {
		if parts[4] != "keyRings" || !idPattern.MatchString(parts[5]) {
			return bad()
		}
		n.ring = parts[5]
	}
	if len(parts) >= 8 {
		if parts[6] != "cryptoKeys" || !idPattern.MatchString(parts[7]) {
			return bad()
		}
		n.key = parts[7]
	}
	if len(parts) == 10 {
		v, err := strconv.Atoi(parts[9])
		if parts[8] != "cryptoKeyVersions" || err != nil || v < 1 || strconv.Itoa(v) != parts[9] {
			return bad()
		}
		n.version = v
	}
	return n, nil
}

func depthNoun(depth string) string {
	switch depth {
	case "location":
		return "location"
	case "ring":
		return "key ring"
	case "version":
		return "crypto key version"
	default:
		return "crypto key"
	}
}

func (n resourceName) locationName() string {
	return "projects/" + n.project + "/locations/" + n.location
}

func (n resourceName) ringName() string { return n.locationName() + "/keyRings/" + n.ring }

func (n resourceName) keyName() string { return n.ringName() + "/cryptoKeys/" + n.key }

func versionName(key string, id int) string {
	return fmt.Sprintf("%s/cryptoKeyVersions/%d", key, id)
}

// projectOf returns the project id of any resource name under
// projects/{id}, or "".
func projectOf(name string) string {
	parts := strings.SplitN(name, "/", 3)
	if len(parts) >= 2 && parts[0] == "projects" {
		return parts[1]
	}
	return ""
}
