package main

import (
	"context"
	"crypto/x509"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	kms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpccreds "google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// byok gcpkms-emulator prints what the official client needs to reach it:
// the endpoint, the CA file and the platform's key file, with which the
// client signs in (a refusal by IAM is an answer of a signed-in caller).
func TestGCPKMSEmulatorCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	out := &lineWatcher{want: "Press Ctrl-C", seen: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := execute(ctx, []string{"gcpkms-emulator", "--addr", "127.0.0.1:0", "--token-addr", "127.0.0.1:0", "--dir", dir}, strings.NewReader(""), out, io.Discard)
		done <- err
	}()
	select {
	case <-out.seen:
	case err := <-done:
		t.Fatalf("gcpkms-emulator ended before its help: %v\n%s", err, out.String())
	}
	text := out.String()
	field := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("no %s in:\n%s", re, text)
		}
		return m[1]
	}
	addr := field(`listening on (\S+) \(Cloud KMS`)
	caPEM, err := os.ReadFile(field(`CA certificate: (\S+)`))
	if err != nil {
		t.Fatal(err)
	}
	keyFile, err := os.ReadFile(field(`has its key file in (\S+)\.`))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("the CA file holds no certificate")
	}
	client, err := kms.NewKeyManagementClient(ctx, option.WithEndpoint(addr),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(grpccreds.NewClientTLSFromCert(pool, ""))),
		option.WithAuthCredentialsJSON(option.ServiceAccount, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_, err = client.ListKeyRings(ctx, &kmspb.ListKeyRingsRequest{Parent: "projects/" + gcpEmulatorProject + "/locations/global"}).Next()
	if c := status.Code(err); err != nil && err != iterator.Done && c != codes.PermissionDenied {
		t.Fatalf("ListKeyRings with the printed endpoint, CA and key file: %v (code %s)", err, c)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("gcpkms-emulator after Ctrl-C: %v", err)
	}
}
