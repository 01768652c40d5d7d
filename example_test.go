package byok_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms/local"
	"github.com/openbyok/byok/store/sqlite"
)

// A platform keeps its metadata in SQLite and its root key in a file, and
// encrypts a tenant's data. (With BYOK, Config.CustomerKMS reaches the
// tenant's own key; see kms/azurekv and the lifecycle package.)
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "byok-example-")
	defer os.RemoveAll(dir)

	db, err := sqlite.Open(ctx, filepath.Join(dir, "byok.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	prk, err := local.Open(filepath.Join(dir, "platform.key")) // created on first use, mode 0600
	if err != nil {
		log.Fatal(err)
	}
	kr, err := byok.New(byok.Config{Store: db, PlatformKMS: prk, PlatformKeyID: prk.KeyID()})
	if err != nil {
		log.Fatal(err)
	}
	if err := kr.CreateTenant(ctx, "acme", byok.Grace); err != nil {
		log.Fatal(err)
	}

	ct, err := kr.Encrypt(ctx, "acme", "chat", []byte("hello"), []byte("message 42"))
	if err != nil {
		log.Fatal(err)
	}
	pt, err := kr.Decrypt(ctx, "acme", "chat", ct, []byte("message 42"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", pt)

	// The ciphertext is bound to its tenant, scope and associated data.
	_, err = kr.Decrypt(ctx, "acme", "files", ct, []byte("message 42"))
	fmt.Println(errors.Is(err, byok.ErrDecrypt))
	// Output:
	// hello
	// true
}
