package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/store/sqlite"
)

func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "byok")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	db, err := sqlite.Open(ctx, filepath.Join(dir, "byok.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	now := time.Now()
	prk := kms.Wrapped{KeyID: "local://platform-root/1", Algorithm: "A256GCM", Ciphertext: []byte("…")}
	err = db.CreateTenant(ctx, byok.TenantRecord{ID: "acme", Policy: byok.Grace, Created: now},
		[]byok.TenantKeyRecord{{Tenant: "acme", Kind: byok.PlatformManaged, Epoch: 1,
			CustomerShare: prk, PlatformShare: prk, Created: now}})
	if err != nil {
		log.Fatal(err)
	}
	inv, err := db.ShareInventory(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range inv {
		fmt.Printf("%s: %d shares\n", c.KeyID, c.Shares)
	}
	// Output:
	// local://platform-root/1: 2 shares
}
