package emuca

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// TestStoredCASurvivesARestart: a CA made in a directory and stored is the
// one read back, and its leaves verify for DNS names and addresses.
func TestStoredCASurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	ca, created, err := LoadOrCreate("emu", dir, now)
	if err != nil || !created {
		t.Fatalf("first start: created %v, %v", created, err)
	}
	if err := ca.Store(dir); err != nil {
		t.Fatal(err)
	}
	again, created, err := LoadOrCreate("emu", dir, now)
	if err != nil || created || !again.Cert.Equal(ca.Cert) {
		t.Fatalf("second start: created %v, same CA %v, %v", created, err == nil && again.Cert.Equal(ca.Cert), err)
	}
	leaf, err := again.Leaf([]string{"*.vault.example", "127.0.0.1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(leaf.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"k.vault.example", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: name, CurrentTime: now}); err != nil {
			t.Errorf("leaf for %s: %v", name, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "other.example", CurrentTime: now}); err == nil {
		t.Error("the leaf verifies for a name it does not carry")
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v; want mode 0600", fi, err)
	}
}

// TestBrokenCAIsNamed: a certificate without its key, or garbage, is an
// error that names the file to remove, not a silent new CA.
func TestBrokenCAIsNamed(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, CertFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate("emu", dir, now); err == nil || !strings.Contains(err.Error(), "remove "+CertFile) || !strings.HasPrefix(err.Error(), "emu: ") {
		t.Fatalf("CA certificate without its key: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate("emu", dir, now); err == nil || !strings.Contains(err.Error(), "unusable") {
		t.Fatalf("garbage CA: %v", err)
	}
}
