package azurekv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// certPEM returns c's certificate and key as PEM, the key as PKCS#8 or,
// with pkcs1, PKCS#1.
func certPEM(t *testing.T, c *Certificate, pkcs1 bool) []byte {
	t.Helper()
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
	if pkcs1 {
		return append(out, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(c.Key)})...)
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
}

func writePEMFile(t *testing.T, dir, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f, mode); err != nil { // WriteFile's mode is masked by umask
		t.Fatal(err)
	}
	return f
}

func TestLoadCertificateSet(t *testing.T) {
	dir := t.TempDir()
	older := must(GenerateCertificate("platform", 30*24*time.Hour))
	newer := must(GenerateCertificate("platform", 90*24*time.Hour))
	// GenerateCertificate truncates to the second: make newer strictly newer.
	newer.Cert.NotBefore = newer.Cert.NotBefore.Add(time.Second)
	newerCert := mustSelfSign(t, newer, newer.Cert.NotBefore, newer.Cert.NotAfter)
	cur := writePEMFile(t, dir, "current.pem", certPEM(t, older, false), 0o600)
	next := writePEMFile(t, dir, "next.pem", certPEM(t, newerCert, true), 0o400)

	set, err := LoadCertificateSet(cur)
	if err != nil {
		t.Fatal(err)
	}
	if set.Next != nil || !set.Current.Cert.Equal(older.Cert) || !set.Current.Key.Equal(older.Key) {
		t.Errorf("one file: %v / %v", set.Current, set.Next)
	}
	for _, order := range [][]string{{cur, next}, {next, cur}} {
		set, err := LoadCertificateSet(order...)
		if err != nil {
			t.Fatal(err)
		}
		if !set.Current.Cert.Equal(older.Cert) || set.Next == nil || !set.Next.Cert.Equal(newerCert.Cert) {
			t.Errorf("files %v: current %v, next %v; want the newer one as Next", order, set.Current, set.Next)
		}
		if err := set.validate(); err != nil {
			t.Errorf("validate: %v", err)
		}
	}

	now := time.Now()
	expired := mustSelfSign(t, older, now.Add(-48*time.Hour), now.Add(-time.Hour))
	future := mustSelfSign(t, older, now.Add(24*time.Hour), now.Add(48*time.Hour))
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	certOnly := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: older.Cert.Raw})
	mismatched := append(append([]byte{}, certOnly...), certPEM(t, newer, false)[len(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: newer.Cert.Raw})):]...)
	for _, tc := range []struct {
		name   string
		files  func() []string
		want   error
		remedy string
	}{
		{"missing file", func() []string { return []string{filepath.Join(dir, "nope.pem")} }, ErrCertFileMissing, "give the path"},
		{"readable by others", func() []string { return []string{writePEMFile(t, dir, "open.pem", certPEM(t, older, false), 0o644)} }, ErrCertFilePermissions, "chmod 600 " + filepath.Join(dir, "open.pem")},
		{"readable by group", func() []string { return []string{writePEMFile(t, dir, "group.pem", certPEM(t, older, false), 0o640)} }, ErrCertFilePermissions, "chmod 600"},
		{"no private key", func() []string { return []string{writePEMFile(t, dir, "nokey.pem", certOnly, 0o600)} }, ErrCertFileNoKey, "PKCS#8"},
		{"ECDSA key", func() []string {
			return []string{writePEMFile(t, dir, "ec.pem", append(certOnly, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})...), 0o600)}
		}, ErrCertFileNoKey, "RSA"},
		{"encrypted key", func() []string {
			return []string{writePEMFile(t, dir, "enc.pem", append(certOnly, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}})...), 0o600)}
		}, ErrCertFileNoKey, "-nocrypt"},
		{"no certificate", func() []string { return []string{writePEMFile(t, dir, "nocert.pem", []byte("hello"), 0o600)} }, ErrCertFileNoCert, "BEGIN CERTIFICATE"},
		{"key of another certificate", func() []string { return []string{writePEMFile(t, dir, "mismatch.pem", mismatched, 0o600)} }, ErrCertFileKeyMismatch, "belongs to this certificate"},
		{"expired", func() []string {
			return []string{writePEMFile(t, dir, "expired.pem", certPEM(t, expired, false), 0o600)}
		}, ErrCertFileExpired, "create a new certificate"},
		{"expired next of a rollover", func() []string {
			return []string{cur, writePEMFile(t, dir, "expired2.pem", certPEM(t, expired, false), 0o600)}
		}, ErrCertFileExpired, ""},
		{"current not yet valid", func() []string { return []string{writePEMFile(t, dir, "future.pem", certPEM(t, future, false), 0o600)} }, ErrCertFileNotYetValid, "valid now"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadCertificateSet(tc.files()...)
			var cfe *CertificateFileError
			if !errors.Is(err, tc.want) || !errors.As(err, &cfe) {
				t.Fatalf("LoadCertificateSet: %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.remedy) || !strings.Contains(err.Error(), cfe.File) {
				t.Errorf("error %q lacks the file or %q", err, tc.remedy)
			}
			if strings.Contains(err.Error(), "BEGIN RSA") || strings.Contains(err.Error(), "BEGIN PRIVATE") {
				t.Error("the error shows key material")
			}
		})
	}
	// A future certificate is fine as the next one of a rollover.
	set, err = LoadCertificateSet(cur, writePEMFile(t, dir, "future-next.pem", certPEM(t, future, false), 0o600))
	if err != nil || set.Next == nil || !set.Next.Cert.Equal(future.Cert) {
		t.Errorf("future next: %v, %v", set.Next, err)
	}
	for _, files := range [][]string{nil, {cur, cur}, {cur, next, cur}} {
		if _, err := LoadCertificateSet(files...); err == nil {
			t.Errorf("LoadCertificateSet(%v) accepted", files)
		}
	}
}

// mustSelfSign re-issues c's key in a self-signed certificate valid from
// notBefore to notAfter.
func mustSelfSign(t *testing.T, c *Certificate, notBefore, notAfter time.Time) *Certificate {
	t.Helper()
	tmpl := *c.Cert
	tmpl.NotBefore, tmpl.NotAfter = notBefore, notAfter
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &c.Key.PublicKey, c.Key)
	if err != nil {
		t.Fatal(err)
	}
	return &Certificate{Cert: must(x509.ParseCertificate(der)), Key: c.Key}
}

// TestPlatformAppCertificateFiles: the platform app signs in to the
// customer's directory with certificates read from PEM files, during a
// rollover whose next certificate is not uploaded yet and after.
func TestPlatformAppCertificateFiles(t *testing.T) {
	e := newEnv(t)
	e.consentPlatform(t)
	dir := t.TempDir()
	cur := must(GenerateCertificate("platform", 30*24*time.Hour))
	next := mustSelfSign(t, must(GenerateCertificate("platform", 60*24*time.Hour)), cur.Cert.NotBefore.Add(time.Second), cur.Cert.NotAfter.Add(time.Hour))
	must(e.emu.AddCertificate(e.platform.ClientID, cur.Cert.Raw))
	set, err := LoadCertificateSet(
		writePEMFile(t, dir, "a.pem", certPEM(t, cur, false), 0o600),
		writePEMFile(t, dir, "b.pem", certPEM(t, next, true), 0o600))
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.config(contoso + "/keys/cmk")
	cfg.Credential = PlatformApp{ClientID: e.platform.ClientID, Certificates: &set}
	if _, err := e.provider(t, cfg).Wrap(bg, contoso+"/keys/cmk", []byte("share")); err != nil {
		t.Fatalf("Wrap with the current certificate while the next is not uploaded: %v", err)
	}
	must(e.emu.AddCertificate(e.platform.ClientID, next.Cert.Raw))
	if err := e.emu.RemoveCertificate(e.platform.ClientID, cur.ThumbprintSHA256()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.provider(t, cfg).Wrap(bg, contoso+"/keys/cmk", []byte("share")); err != nil {
		t.Fatalf("Wrap with the next certificate: %v", err)
	}
}
