// Package emuca is the certificate authority of byok's cloud emulators
// (kvemu, awsemu, gcpkmsemu): a CA of their own whose leaf certificates
// name the clouds' hosts, so that the official SDKs, given the CA, reach
// an emulator over real TLS, unchanged. It is not for production: its
// keys are ECDSA P-256 made at first start, and its leaves are valid for a
// year.
package emuca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The files of a CA kept in a directory.
const (
	CertFile = "ca.pem"
	KeyFile  = "ca-key.pem"
)

// Authority is an emulator's certificate authority.
type Authority struct {
	// Cert is the CA certificate and PEM its PEM encoding, what clients
	// trust.
	Cert *x509.Certificate
	PEM  []byte
	key  *ecdsa.PrivateKey
	name string // the emulator's, in subjects and errors
}

// New makes a CA for the emulator name, valid for ten years from now (an
// hour back, for clock skew).
func New(name string, now time.Time) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%s: generate CA key: %w", name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          Serial(),
		Subject:               pkix.Name{CommonName: name + " test CA", Organization: []string{"byok " + name}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("%s: create CA certificate: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Authority{Cert: cert, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key, name: name}, nil
}

// LoadOrCreate reads the CA from dir, or makes one with New; created
// reports the latter, and [Authority.Store] then keeps it in dir so that a
// restarted emulator keeps its CA. An empty dir always makes one.
func LoadOrCreate(name, dir string, now time.Time) (ca *Authority, created bool, err error) {
	if dir != "" {
		ca, err := load(name, dir)
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			return ca, false, err
		}
	}
	ca, err = New(name, now)
	return ca, err == nil, err
}

// Store writes the CA's key and then its certificate to dir, each
// atomically: clients that wait for ca.pem find the key already there.
func (ca *Authority) Store(dir string) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(filepath.Join(dir, KeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return fmt.Errorf("%s: %w", ca.name, err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, CertFile), ca.PEM); err != nil {
		return fmt.Errorf("%s: %w", ca.name, err)
	}
	return nil
}

func load(name, dir string) (*Authority, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("%s: %s exists but its key does not: %v; remove %s to make a new CA", name, CertFile, err, CertFile) // %v: not ErrNotExist, which would make a new CA
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: CA in %s is unusable: %w; remove %s and %s to make a new one", name, dir, err, CertFile, KeyFile)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: CA key in %s is %T, want ECDSA; remove %s and %s to make a new one", name, dir, pair.PrivateKey, CertFile, KeyFile)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s: %s in %s is not a CA certificate", name, CertFile, dir)
	}
	return &Authority{Cert: cert, PEM: certPEM, key: key, name: name}, nil
}

// Leaf issues a server certificate (ECDSA P-256, valid a year) for names:
// DNS names (wildcards allowed) or IP addresses.
func (ca *Authority) Leaf(names []string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: Serial(),
		Subject:      pkix.Name{CommonName: ca.name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: issue leaf certificate: %w", ca.name, err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key}, nil
}

// Pool returns a certificate pool that trusts the CA alone.
func (ca *Authority) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Serial returns a random 127-bit certificate serial number.
func Serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)) // crypto/rand never fails
	return n
}

// WriteFileAtomic writes data to name with mode 0600 through a temporary
// file and a rename, so that a crash never leaves a half-written file.
func WriteFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name))
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), name); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
