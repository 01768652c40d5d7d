package azurekv

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// CertificateKeyBits is the size of the RSA keys [GenerateCertificate]
// makes.
const CertificateKeyBits = 3072

// Certificate is a certificate credential that byok generated for one
// tenant's app registration: the customer uploads the certificate (PEM or
// CER) to the app, and byok signs its client assertions with Key. Its
// String method shows the thumbprint and validity, never the key.
type Certificate struct {
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
}

// GenerateCertificate makes an RSA key and a self-signed X.509 certificate
// for tenant's app registration, valid from a minute ago for validity.
// Entra ID accepts self-signed certificates as app credentials; the
// certificate's subject names byok and the tenant so that the customer can
// tell it apart in the portal.
func GenerateCertificate(tenant string, validity time.Duration) (*Certificate, error) {
	if tenant == "" {
		return nil, errors.New("azurekv: GenerateCertificate needs the customer's tenant id")
	}
	if validity < 24*time.Hour || validity > 3*365*24*time.Hour {
		return nil, fmt.Errorf("azurekv: certificate validity %v is out of range; use 1 day to 3 years (Entra ID's portal accepts up to 3 years)", validity)
	}
	key, err := rsa.GenerateKey(rand.Reader, CertificateKeyBits)
	if err != nil {
		return nil, fmt.Errorf("azurekv: generating the certificate's RSA key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("azurekv: generating a serial number: %w", err)
	}
	now := time.Now().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "byok " + tenant, Organization: []string{"byok"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("azurekv: creating the certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("azurekv: parsing the new certificate: %w", err)
	}
	return &Certificate{Cert: cert, Key: key}, nil
}

// PEM returns the certificate (not the key) PEM-encoded, for upload to the
// app registration (Certificates & secrets > Certificates > Upload).
func (c *Certificate) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// CER returns the certificate DER-encoded (a .cer file), for upload.
func (c *Certificate) CER() []byte { return c.Cert.Raw }

// ThumbprintSHA256 returns the hex SHA-256 of the DER certificate, as the
// portal shows it.
func (c *Certificate) ThumbprintSHA256() string {
	sum := sha256.Sum256(c.Cert.Raw)
	return hex.EncodeToString(sum[:])
}

// String describes the certificate without its key.
func (c *Certificate) String() string {
	if c == nil || c.Cert == nil {
		return "<no certificate>"
	}
	return fmt.Sprintf("certificate %s valid %s to %s", c.ThumbprintSHA256(),
		c.Cert.NotBefore.UTC().Format(time.RFC3339), c.Cert.NotAfter.UTC().Format(time.RFC3339))
}

// validAt reports whether now is within the certificate's validity.
func (c *Certificate) validAt(now time.Time) bool {
	return c != nil && c.Cert != nil && !now.Before(c.Cert.NotBefore) && now.Before(c.Cert.NotAfter)
}

// CertificateSet is the certificate credential of one app registration:
// the current certificate and, during a rollover, the next one. Both are
// registered on the app while the rollover lasts; the credential
// authenticates with the newest valid certificate that Entra ID accepts,
// so the switch happens by itself once the customer uploads the next
// certificate, and nothing breaks if they have not yet.
//
// A rollover: [CertificateSet.StartRollover] some weeks before Current
// expires, the customer uploads Next, and [CertificateSet.FinishRollover]
// once Next is in use (the customer may then delete the old certificate).
type CertificateSet struct {
	Current *Certificate
	Next    *Certificate // nil outside a rollover
}

// StartRollover returns s with a new Next certificate for tenant.
func (s CertificateSet) StartRollover(tenant string, validity time.Duration) (CertificateSet, error) {
	next, err := GenerateCertificate(tenant, validity)
	if err != nil {
		return s, err
	}
	s.Next = next
	return s, nil
}

// FinishRollover returns s with Next as Current and no Next. It fails
// outside a rollover.
func (s CertificateSet) FinishRollover() (CertificateSet, error) {
	if s.Next == nil {
		return s, errors.New("azurekv: FinishRollover: no rollover in progress; call StartRollover first")
	}
	return CertificateSet{Current: s.Next}, nil
}

// candidates returns the certificates to try, newest first, that are valid
// at now.
func (s CertificateSet) candidates(now time.Time) []*Certificate {
	var out []*Certificate
	for _, c := range []*Certificate{s.Next, s.Current} {
		if c.validAt(now) {
			out = append(out, c)
		}
	}
	return out
}

func (s CertificateSet) validate() error {
	for name, c := range map[string]*Certificate{"Current": s.Current, "Next": s.Next} {
		if c == nil {
			if name == "Current" {
				return errors.New("the certificate set has no Current certificate; generate one with GenerateCertificate")
			}
			continue
		}
		if c.Cert == nil || c.Key == nil {
			return fmt.Errorf("the %s certificate lacks its certificate or its private key", name)
		}
		if !c.Key.PublicKey.Equal(c.Cert.PublicKey) {
			return fmt.Errorf("the %s certificate's private key does not match its certificate", name)
		}
	}
	return nil
}
