package awskms

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/openbyok/byok/kms"
)

// The keys of the encryption context byok sends with every Encrypt and
// Decrypt. KMS binds the ciphertext to the context (as AES-GCM associated
// data), logs it in the customer's CloudTrail (requestParameters.
// encryptionContext), and lets the key policy require it
// (kms:EncryptionContext:byok:tenant).
const (
	ContextTenant = "byok:tenant" // Config.Tenant
	ContextKind   = "byok:kind"   // Binding.Kind, when set
	ContextEpoch  = "byok:epoch"  // Binding.Epoch, when Kind is set
)

// AlgorithmSymmetric is the Algorithm of a [kms.Wrapped] made by a
// Provider without a [Binding]: KMS's SYMMETRIC_DEFAULT (AES-256-GCM).
// With a Binding, the Algorithm is
// "SYMMETRIC_DEFAULT;kind=<kind>;epoch=<epoch>", which records the
// binding so that Unwrap rebuilds the same encryption context.
const AlgorithmSymmetric = "SYMMETRIC_DEFAULT"

// Binding is [kms.Binding]: what a wrapped share is for beyond its
// tenant. Under a ctx that carries one ([kms.WithBinding]), Wrap binds it
// into the encryption context and records it in the wrapped value's
// Algorithm, and Unwrap checks that the wrapped value records it, so a
// share of another kind or epoch of the same tenant is refused before any
// call.
type Binding = kms.Binding

var kindRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// EncryptionContext returns the encryption context byok sends for tenant
// and the binding the wrapped value's algorithm records ("" or
// [AlgorithmSymmetric]: none). It fails for an algorithm no Provider
// writes.
//
//	{"byok:tenant": "<tenant>"}                                     no binding
//	{"byok:tenant": "<tenant>", "byok:kind": "<kind>", "byok:epoch": "<n>"}
func EncryptionContext(tenant, algorithm string) (map[string]string, error) {
	b, has, err := parseAlgorithm(algorithm)
	if err != nil {
		return nil, err
	}
	ec := map[string]string{ContextTenant: tenant}
	if has {
		ec[ContextKind] = b.Kind
		ec[ContextEpoch] = strconv.FormatUint(uint64(b.Epoch), 10)
	}
	return ec, nil
}

// algorithm returns the Algorithm that records b.
func algorithm(b Binding, has bool) (string, error) {
	if !has {
		return AlgorithmSymmetric, nil
	}
	if !kindRE.MatchString(b.Kind) {
		return "", fmt.Errorf("awskms: the binding's kind %q is not 1 to 64 letters, digits, '-' or '_'", b.Kind)
	}
	return fmt.Sprintf("%s;kind=%s;epoch=%d", AlgorithmSymmetric, b.Kind, b.Epoch), nil
}

var errAlgorithm = errors.New("awskms: the wrapped value's algorithm is not one a Provider writes")

func parseAlgorithm(alg string) (b Binding, has bool, err error) {
	if alg == AlgorithmSymmetric || alg == "" {
		return Binding{}, false, nil
	}
	rest, ok := strings.CutPrefix(alg, AlgorithmSymmetric+";kind=")
	if !ok {
		return Binding{}, false, fmt.Errorf("%w: %q", errAlgorithm, alg)
	}
	kind, epoch, ok := strings.Cut(rest, ";epoch=")
	n, perr := strconv.ParseUint(epoch, 10, 32)
	if !ok || perr != nil || !kindRE.MatchString(kind) || strconv.FormatUint(n, 10) != epoch {
		return Binding{}, false, fmt.Errorf("%w: %q", errAlgorithm, alg)
	}
	return Binding{Kind: kind, Epoch: uint32(n)}, true, nil
}
