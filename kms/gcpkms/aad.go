package gcpkms

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/openbyok/byok/kms"
)

// AlgorithmSymmetric is the Algorithm of a [kms.Wrapped] made without a
// [kms.Binding]: Cloud KMS's GOOGLE_SYMMETRIC_ENCRYPTION (AES-256-GCM).
// With a Binding it is "GOOGLE_SYMMETRIC_ENCRYPTION;kind=<kind>;epoch=<n>",
// which records the binding so that Unwrap rebuilds the same AAD.
const AlgorithmSymmetric = "GOOGLE_SYMMETRIC_ENCRYPTION"

// AAD returns the additional authenticated data byok sends with Encrypt
// and Decrypt for tenant, the exact version name and the binding the
// wrapped value's algorithm records: lines of "key=value", each ending in
// a newline,
//
//	byok-aad=1
//	tenant=<tenant>
//	version=projects/…/cryptoKeyVersions/N
//	kind=<kind>          (with a binding)
//	epoch=<n>            (with a binding)
//
// Cloud KMS authenticates it with the ciphertext: a value decrypts only
// with the same tenant, version and binding, so a share presented as
// another tenant's, another version's, kind's or epoch's is refused. The
// customer can decrypt a share themselves with `gcloud kms decrypt
// --additional-authenticated-data-file` holding these bytes. It fails for
// an algorithm no Provider writes.
func AAD(tenant, version, algorithm string) ([]byte, error) {
	b, has, err := parseAlgorithm(algorithm)
	if err != nil {
		return nil, err
	}
	s := "byok-aad=1\ntenant=" + tenant + "\nversion=" + version + "\n"
	if has {
		s += "kind=" + b.Kind + "\nepoch=" + strconv.FormatUint(uint64(b.Epoch), 10) + "\n"
	}
	return []byte(s), nil
}

var kindRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// algorithm returns the Algorithm that records b.
func algorithm(b kms.Binding, has bool) (string, error) {
	if !has {
		return AlgorithmSymmetric, nil
	}
	if !kindRE.MatchString(b.Kind) {
		return "", fmt.Errorf("gcpkms: the binding's kind %q is not 1 to 64 letters, digits, '-' or '_'", b.Kind)
	}
	return fmt.Sprintf("%s;kind=%s;epoch=%d", AlgorithmSymmetric, b.Kind, b.Epoch), nil
}

var (
	errAlgorithm = errors.New("gcpkms: the wrapped value's algorithm is not one a Provider writes")
	errBinding   = errors.New("gcpkms: the wrapped value's binding differs from the caller's")
)

func parseAlgorithm(alg string) (b kms.Binding, has bool, err error) {
	if alg == AlgorithmSymmetric {
		return kms.Binding{}, false, nil
	}
	rest, ok := strings.CutPrefix(alg, AlgorithmSymmetric+";kind=")
	if !ok {
		return kms.Binding{}, false, fmt.Errorf("%w: %q", errAlgorithm, alg)
	}
	kind, epoch, ok := strings.Cut(rest, ";epoch=")
	n, perr := strconv.ParseUint(epoch, 10, 32)
	if !ok || perr != nil || !kindRE.MatchString(kind) || strconv.FormatUint(n, 10) != epoch {
		return kms.Binding{}, false, fmt.Errorf("%w: %q", errAlgorithm, alg)
	}
	return kms.Binding{Kind: kind, Epoch: uint32(n)}, true, nil
}
