package azurekv

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"time"
)

// Problems of a certificate file, matched with errors.Is on the
// [*CertificateFileError] that [LoadCertificateSet] returns.
var (
	ErrCertFileMissing     = errors.New("the file does not exist or cannot be read")
	ErrCertFilePermissions = errors.New("the file is readable by group or others")
	ErrCertFileNoCert      = errors.New("the file holds no PEM CERTIFICATE")
	ErrCertFileNoKey       = errors.New("the file holds no usable private key")
	ErrCertFileKeyMismatch = errors.New("the private key does not match the certificate")
	ErrCertFileExpired     = errors.New("the certificate has expired")
	ErrCertFileNotYetValid = errors.New("the certificate is not valid yet")
)

// CertificateFileError is a certificate file that [LoadCertificateSet]
// refuses: which file, what is wrong (Err, one of the ErrCertFile*
// values) with detail, and the remedy. It never holds key material.
type CertificateFileError struct {
	File   string
	Err    error
	Detail string
	Remedy string
}

func (e *CertificateFileError) Error() string {
	msg := "azurekv: certificate file " + e.File + ": " + e.Err.Error()
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg + "; " + e.Remedy
}

func (e *CertificateFileError) Unwrap() error { return e.Err }

// LoadCertificateSet reads the platform app's certificates from one or two
// PEM files, each holding the certificate (first CERTIFICATE block; more
// are ignored as its chain) and its RSA private key (PRIVATE KEY, PKCS#8,
// or RSA PRIVATE KEY, PKCS#1, unencrypted). Each file must be readable by
// its owner only (chmod 600). One file is the current certificate; two
// files are a rollover: the newer certificate (later NotBefore, then
// later NotAfter) is Next, which may be not yet valid. A certificate that
// has expired, or a current one not yet valid, is refused. Errors are
// [*CertificateFileError].
func LoadCertificateSet(files ...string) (CertificateSet, error) {
	return loadCertificateSet(time.Now(), files)
}

func loadCertificateSet(now time.Time, files []string) (CertificateSet, error) {
	if len(files) == 0 || len(files) > 2 {
		return CertificateSet{}, fmt.Errorf("azurekv: give one certificate file, or two during a rollover; got %d", len(files))
	}
	if len(files) == 2 && files[0] == files[1] {
		return CertificateSet{}, fmt.Errorf("azurekv: the two certificate files are the same file %s; give the current and the next certificate", files[0])
	}
	certs := make([]*Certificate, len(files))
	for i, f := range files {
		c, err := loadCertificateFile(f, now)
		if err != nil {
			return CertificateSet{}, err
		}
		certs[i] = c
	}
	if len(certs) == 1 {
		if now.Before(certs[0].Cert.NotBefore) {
			return CertificateSet{}, notYetValid(files[0], certs[0])
		}
		return CertificateSet{Current: certs[0]}, nil
	}
	cur, next, curFile := certs[0], certs[1], files[0]
	if newer(cur, next) {
		cur, next, curFile = next, cur, files[1]
	}
	if cur.Cert.Equal(next.Cert) {
		return CertificateSet{}, fmt.Errorf("azurekv: the certificate files %s and %s hold the same certificate; give the current and the next certificate", files[0], files[1])
	}
	if now.Before(cur.Cert.NotBefore) {
		return CertificateSet{}, notYetValid(curFile, cur)
	}
	return CertificateSet{Current: cur, Next: next}, nil
}

// newer reports whether a is newer than b.
func newer(a, b *Certificate) bool {
	if !a.Cert.NotBefore.Equal(b.Cert.NotBefore) {
		return a.Cert.NotBefore.After(b.Cert.NotBefore)
	}
	return a.Cert.NotAfter.After(b.Cert.NotAfter)
}

func notYetValid(file string, c *Certificate) error {
	return &CertificateFileError{File: file, Err: ErrCertFileNotYetValid,
		Detail: "valid from " + c.Cert.NotBefore.UTC().Format(time.RFC3339),
		Remedy: "use a certificate valid now as the current one; a newer certificate goes in a second file, as the next one of a rollover"}
}

// loadCertificateFile reads one PEM file with a certificate and its key.
func loadCertificateFile(file string, now time.Time) (*Certificate, error) {
	fail := func(err error, detail, remedy string) error {
		return &CertificateFileError{File: file, Err: err, Detail: detail, Remedy: remedy}
	}
	fi, err := os.Stat(file)
	if err != nil {
		detail := ""
		if !errors.Is(err, fs.ErrNotExist) {
			detail = err.Error()
		}
		return nil, fail(ErrCertFileMissing, detail, "give the path of a PEM file with the certificate and its private key, readable by byok's user")
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fail(ErrCertFilePermissions, fmt.Sprintf("mode %04o", fi.Mode().Perm()),
			"it holds a private key: run `chmod 600 "+file+"` (in Kubernetes, defaultMode: 0400 on the secret volume)")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fail(ErrCertFileMissing, err.Error(), "make the file readable by byok's user (and by no one else)")
	}
	var cert *x509.Certificate
	var key *rsa.PrivateKey
	var keyProblem string
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			if cert != nil {
				continue // the chain
			}
			if cert, err = x509.ParseCertificate(b.Bytes); err != nil {
				return nil, fail(ErrCertFileNoCert, "the CERTIFICATE block does not parse: "+err.Error(), "export the certificate again as PEM")
			}
		case "PRIVATE KEY", "RSA PRIVATE KEY":
			if key != nil {
				return nil, fail(ErrCertFileNoKey, "the file holds more than one private key", "keep one certificate and its own key in each file")
			}
			var k any
			if b.Type == "PRIVATE KEY" {
				k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
			} else {
				k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
			}
			if err != nil {
				keyProblem = "the " + b.Type + " block does not parse"
				continue
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				keyProblem = fmt.Sprintf("the key is %T; Entra ID certificate credentials of byok need RSA", k)
				continue
			}
			key = rk
		case "ENCRYPTED PRIVATE KEY":
			keyProblem = "the private key is encrypted"
		case "EC PRIVATE KEY":
			keyProblem = "the key is ECDSA; Entra ID certificate credentials of byok need RSA"
		}
	}
	if cert == nil {
		return nil, fail(ErrCertFileNoCert, "", "put the certificate (-----BEGIN CERTIFICATE-----) and its private key in the file")
	}
	if key == nil {
		if keyProblem == "" {
			keyProblem = "no PRIVATE KEY or RSA PRIVATE KEY block"
		}
		return nil, fail(ErrCertFileNoKey, keyProblem,
			"append the certificate's unencrypted RSA private key as PKCS#8 (e.g. `openssl pkcs8 -topk8 -nocrypt -in key.pem`) or PKCS#1")
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fail(ErrCertFileKeyMismatch, "", "put the private key that belongs to this certificate in the file")
	}
	if !now.Before(cert.NotAfter) {
		return nil, fail(ErrCertFileExpired, "expired "+cert.NotAfter.UTC().Format(time.RFC3339),
			"create a new certificate, upload it to the platform app (Certificates & secrets > Certificates), and give its file")
	}
	return &Certificate{Cert: cert, Key: key}, nil
}
