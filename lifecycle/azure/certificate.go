package azure

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/lifecycle"
)

// CertificateSecret encodes a certificate credential as the [Secret] of
// settings with [CredentialCertificate]: the private key as a PKCS #8
// "PRIVATE KEY" PEM block followed by the certificate as a "CERTIFICATE"
// PEM block (about 3.7 KB for an RSA-3072 key; the lifecycle seals it under
// the platform root key in an envelope, as it does any secret). The
// certificate is what the customer uploads to its app registration. It is
// CertificateSetSecret of a set without a Next certificate.
func CertificateSecret(c *azurekv.Certificate) (lifecycle.Secret, error) {
	return CertificateSetSecret(azurekv.CertificateSet{Current: c})
}

// nextHeader marks the PEM blocks of the Next certificate of a rollover
// in a [CertificateSetSecret]; blocks without it are the Current one's.
const nextHeader = "Byok-Rollover"

// CertificateSetSecret encodes a certificate credential during a rollover
// (see lifecycle.Service.StartCredentialRollover): the Current certificate and
// key as [CertificateSecret] writes them, then, if set.Next is not nil, the
// Next key and certificate as two more PEM blocks with the header
// "Byok-Rollover: next". Its errors never quote key material.
func CertificateSetSecret(set azurekv.CertificateSet) (lifecycle.Secret, error) {
	var b []byte
	defer func() { clear(b) }()
	for i, c := range []*azurekv.Certificate{set.Current, set.Next} {
		if i == 1 && c == nil {
			break
		}
		if c == nil || c.Cert == nil || c.Key == nil {
			return lifecycle.Secret{}, errors.New("azure: CertificateSecret needs a certificate and its private key")
		}
		der, err := x509.MarshalPKCS8PrivateKey(c.Key)
		if err != nil {
			return lifecycle.Secret{}, fmt.Errorf("azure: encoding the certificate's private key: %w", err)
		}
		var h map[string]string
		if i == 1 {
			h = map[string]string{nextHeader: "next"}
		}
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: h, Bytes: der})...)
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: h, Bytes: c.Cert.Raw})...)
		clear(der)
	}
	return lifecycle.NewSecret(string(b)), nil
}

// parseCertificateSecret decodes the Secret of [CertificateSetSecret]
// (or [CertificateSecret]): for the Current certificate, one PKCS #8 RSA
// "PRIVATE KEY" block and one "CERTIFICATE" block that matches it, in
// either order; during a rollover, the same again with the header
// "Byok-Rollover: next" for the Next one. Its errors never quote the
// secret.
func parseCertificateSecret(sec lifecycle.Secret) (azurekv.CertificateSet, error) {
	var cur, next azurekv.Certificate
	rest := []byte(sec.Reveal())
	defer clear(rest)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c, which := &cur, ""
		switch b.Headers[nextHeader] {
		case "":
		case "next":
			c, which = &next, "next "
		default:
			return azurekv.CertificateSet{}, fmt.Errorf("the certificate credential has a PEM block with %s %q; only \"next\" is known", nextHeader, b.Headers[nextHeader])
		}
		switch b.Type {
		case "PRIVATE KEY":
			if c.Key != nil {
				return azurekv.CertificateSet{}, fmt.Errorf("the certificate credential holds two %sprivate keys; it needs one PKCS #8 PRIVATE KEY block and one CERTIFICATE block", which)
			}
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			clear(b.Bytes)
			if err != nil {
				return azurekv.CertificateSet{}, fmt.Errorf("the certificate credential's %sPRIVATE KEY block is not a PKCS #8 key", which)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return azurekv.CertificateSet{}, fmt.Errorf("the certificate credential's %sprivate key is %T; Entra ID certificate credentials need RSA", which, k)
			}
			c.Key = rk
		case "CERTIFICATE":
			if c.Cert != nil {
				return azurekv.CertificateSet{}, fmt.Errorf("the certificate credential holds two %scertificates; it needs exactly one", which)
			}
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return azurekv.CertificateSet{}, fmt.Errorf("the certificate credential's %sCERTIFICATE block does not parse: %v", which, err)
			}
			c.Cert = cert
		default:
			return azurekv.CertificateSet{}, fmt.Errorf("the certificate credential holds a %q PEM block; it needs one PKCS #8 PRIVATE KEY block and one CERTIFICATE block", b.Type)
		}
	}
	switch {
	case cur.Key == nil || cur.Cert == nil:
		return azurekv.CertificateSet{}, errors.New("the certificate credential needs one PKCS #8 PRIVATE KEY block and one CERTIFICATE block (generate the certificate in the console)")
	case !cur.Key.PublicKey.Equal(cur.Cert.PublicKey):
		return azurekv.CertificateSet{}, errors.New("the certificate credential's private key does not match its certificate")
	}
	set := azurekv.CertificateSet{Current: &cur}
	switch {
	case next.Key == nil && next.Cert == nil:
	case next.Key == nil || next.Cert == nil:
		return azurekv.CertificateSet{}, errors.New("the certificate credential's next certificate needs one PKCS #8 PRIVATE KEY block and one CERTIFICATE block (start the rollover again in the console)")
	case !next.Key.PublicKey.Equal(next.Cert.PublicKey):
		return azurekv.CertificateSet{}, errors.New("the certificate credential's next private key does not match its certificate")
	default:
		set.Next = &next
	}
	return set, nil
}

// CertificateValidity is how long the certificates of a rollover are
// valid.
const CertificateValidity = 365 * 24 * time.Hour

// CertificateCredential is the public part of a tenant's certificate
// credential: its certificates without their private keys, the view of
// [Connector.Rollover].
type CertificateCredential struct {
	// Current is the certificate byok signs in with until Entra ID
	// accepts Next.
	Current *x509.Certificate
	// Next is the certificate of a rollover in progress; nil outside one.
	// Both are accepted until the rollover is finished.
	Next *x509.Certificate
}

// certificates returns the certificate set of s, whose credential must be
// a certificate.
func certificates(s lifecycle.KeySettings) (azurekv.CertificateSet, error) {
	o, err := OptionsOf(s)
	if err != nil {
		return azurekv.CertificateSet{}, err
	}
	if o.Credential != CredentialCertificate {
		return azurekv.CertificateSet{}, &lifecycle.FieldError{Field: "credential", Reason: fmt.Sprintf("is %q; only the %q credential has certificates to roll over",
			o.Credential, CredentialCertificate)}
	}
	set, err := parseCertificateSecret(s.Secret)
	if err != nil {
		return azurekv.CertificateSet{}, fmt.Errorf("the stored certificate credential of tenant %q: %w", s.Tenant, err)
	}
	return set, nil
}

// Rollover implements lifecycle.CredentialRoller: a [CertificateCredential].
func (c *Connector) Rollover(s lifecycle.KeySettings) (any, error) {
	set, err := certificates(s)
	if err != nil {
		return nil, err
	}
	cc := CertificateCredential{Current: set.Current.Cert}
	if set.Next != nil {
		cc.Next = set.Next.Cert
	}
	return cc, nil
}

// StartRollover implements lifecycle.CredentialRoller: a new key and
// self-signed certificate for s.Tenant, valid for [CertificateValidity].
func (c *Connector) StartRollover(s lifecycle.KeySettings) (lifecycle.Secret, error) {
	set, err := certificates(s)
	if err != nil {
		return lifecycle.Secret{}, err
	}
	if set.Next != nil {
		return lifecycle.Secret{}, &lifecycle.FieldError{Field: "credential", Reason: "a certificate rollover is already in progress (next certificate " +
			set.Next.ThumbprintSHA256()[:16] + "); upload that certificate to the app and finish the rollover first"}
	}
	next, err := set.StartRollover(s.Tenant, CertificateValidity)
	if err != nil {
		return lifecycle.Secret{}, err
	}
	return CertificateSetSecret(next)
}

// FinishRollover implements lifecycle.CredentialRoller.
func (c *Connector) FinishRollover(s lifecycle.KeySettings) (lifecycle.Secret, error) {
	set, err := certificates(s)
	if err != nil {
		return lifecycle.Secret{}, err
	}
	if set.Next == nil {
		return lifecycle.Secret{}, &lifecycle.FieldError{Field: "credential", Reason: "no certificate rollover is in progress; start one first"}
	}
	done, err := set.FinishRollover()
	if err != nil {
		return lifecycle.Secret{}, err
	}
	return CertificateSetSecret(done)
}

// Fingerprints implements lifecycle.CredentialRoller: the SHA-256
// thumbprints of the current and next certificates.
func (c *Connector) Fingerprints(s lifecycle.KeySettings) map[string]string {
	set, err := certificates(s)
	if err != nil {
		return nil
	}
	view := map[string]string{"current_certificate": set.Current.ThumbprintSHA256()}
	if set.Next != nil {
		view["next_certificate"] = set.Next.ThumbprintSHA256()
	}
	return view
}
