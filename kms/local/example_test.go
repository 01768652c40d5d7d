package local_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/openbyok/byok/kms/local"
)

// The platform opens its root key file at start-up (it is created on first
// use), wraps a share, rotates the key, and still unwraps the share with
// the version the wrapped value records.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "byok-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	prk, err := local.Open(filepath.Join(dir, "prk"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	share := make([]byte, 32)
	rand.Read(share)

	w, err := prk.Wrap(ctx, prk.KeyID(), share)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("wrapped under", w.KeyID)

	v2, err := prk.Rotate()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("rotated to", v2)

	got, err := prk.Unwrap(ctx, w) // w.KeyID still names version 1
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("unwrapped:", bytes.Equal(got, share))
	// Output:
	// wrapped under local:platform/v1
	// rotated to local:platform/v2
	// unwrapped: true
}

// A deployment that keeps the key in a secret store passes its content,
// read from wherever the caller keeps it (here an environment variable),
// to Parse. The entries may share one line, separated by ';'.
func ExampleParse() {
	content := "byok-local-key v1; name platform; key 1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // e.g. os.Getenv("BYOK_PRK")
	prk, err := local.Parse(content)
	if err != nil {
		log.Fatal(err)
	}
	info, err := prk.Describe(context.Background(), prk.KeyID())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(prk, info.KeyID, info.Type, info.Size, info.Ops)
	// Output:
	// local.Key(local:platform) local:platform/v1 oct 256 [wrapKey unwrapKey]
}
