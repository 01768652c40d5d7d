package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms/azurekv"
	"github.com/openbyok/byok/kms/kmstest"
	"github.com/openbyok/byok/kvemu"
	"github.com/openbyok/byok/lifecycle"
	"github.com/openbyok/byok/lifecycle/lifecycletest"
	"github.com/openbyok/byok/store/sqlite"
)

// PlatformRekeyResult is what [PlatformRekey] measured.
type PlatformRekeyResult struct {
	Tenants, DEKs int
	Moved         int           // shares moved onto the new version
	Took          time.Duration // the re-key's run
	VaultCalls    int64         // wrap and unwrap calls the HSM answered during it
	DEKsRewrapped int           // DEKs whose wrapping changed: 0, since tenant keys do not change
}

// PlatformRekey measures the platform re-key after a rotation of the
// platform root key: a 256-bit oct-HSM key in a kvemu Managed HSM, reached
// through kms/azurekv and the official SDK, wraps the shares of tenants
// platform-managed tenants, which hold deks DEKs among them; the key gets
// a new version and RekeyPlatform moves every share onto it.
func PlatformRekey(dir string, tenants, deks int) (PlatformRekeyResult, error) {
	ctx := context.Background()
	emu, err := kvemu.Start(kvemu.Options{})
	if err != nil {
		return PlatformRekeyResult{}, err
	}
	defer emu.Close()
	dirID := "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f"
	if _, err := emu.CreateTenant(kvemu.Tenant{ID: dirID}); err != nil {
		return PlatformRekeyResult{}, err
	}
	app, err := emu.CreateApp(kvemu.App{TenantID: dirID})
	if err != nil {
		return PlatformRekeyResult{}, err
	}
	secret, err := emu.AddSecret(app.ClientID, kvemu.Secret{})
	if err != nil {
		return PlatformRekeyResult{}, err
	}
	if err := emu.CreateVault(kvemu.VaultConfig{Name: "platform-hsm", TenantID: dirID, ManagedHSM: true, PurgeProtection: true}); err != nil {
		return PlatformRekeyResult{}, err
	}
	if _, err := emu.CreateKey("platform-hsm", "root", kvemu.KeySpec{Type: "oct-HSM", Size: 256}); err != nil {
		return PlatformRekeyResult{}, err
	}
	if _, err := emu.AssignRole("platform-hsm", kvemu.RoleAssignment{PrincipalID: app.ObjectID, Role: "Managed HSM Crypto Service Encryption User"}); err != nil {
		return PlatformRekeyResult{}, err
	}
	const keyID = "https://platform-hsm.managedhsm.azure.net/keys/root"
	prk, err := azurekv.New(azurekv.Config{TenantID: dirID, Credential: azurekv.ClientSecret{ClientID: app.ClientID, Secret: secret.Value}, Transport: emu.HTTPClient()})
	if err != nil {
		return PlatformRekeyResult{}, err
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "platform-rekey.db"))
	if err != nil {
		return PlatformRekeyResult{}, err
	}
	defer db.Close()
	svc, err := lifecycle.New(lifecycle.Config{Store: db, PlatformKMS: prk, PlatformKeyID: keyID,
		Connectors: []lifecycle.Connector{lifecycletest.Connector{KMS: kmstest.NewFake()}}, Audit: audit.New(db, nil)})
	if err != nil {
		return PlatformRekeyResult{}, err
	}
	res := PlatformRekeyResult{Tenants: tenants, DEKs: deks}
	for i := range tenants {
		if err := svc.CreateTenant(ctx, benchOperator, fmt.Sprintf("t%06d", i), byok.Grace, nil); err != nil {
			return res, err
		}
	}
	// DEK rows spread over the tenants, as the keyring would store them.
	// Their wrapping is opaque here: the re-key must not touch them.
	recs := make([]byok.DEKRecord, deks)
	for i := range recs {
		recs[i] = byok.DEKRecord{Tenant: fmt.Sprintf("t%06d", i%tenants), Scope: "s", Kind: byok.PlatformManaged, Epoch: 1,
			Wrapped: make([]byte, 60), Created: time.Now()}
		rand.Read(recs[i].ID[:])
		rand.Read(recs[i].Wrapped)
		if err := db.PutDEK(ctx, recs[i]); err != nil {
			return res, err
		}
	}
	if _, err := emu.RotateKey("platform-hsm", "root"); err != nil {
		return res, err
	}
	emu.ResetCalls()
	start := time.Now()
	run, err := svc.RekeyPlatform(ctx, lifecycle.PlatformRekey{Actor: benchOperator}, nil)
	res.Took = time.Since(start)
	if err != nil {
		return res, err
	}
	res.Moved = run.Done
	for _, c := range emu.Calls() {
		if (c.Op == kvemu.OpWrapKey || c.Op == kvemu.OpUnwrapKey) && c.Status == http.StatusOK {
			res.VaultCalls += c.N
		}
	}
	for _, r := range recs[:min(len(recs), 1000)] {
		got, err := db.DEK(ctx, r.ID)
		if err != nil {
			return res, err
		}
		if string(got.Wrapped) != string(r.Wrapped) || got.Epoch != r.Epoch {
			res.DEKsRewrapped++
		}
	}
	return res, nil
}

// PlatformCalls returns the calls made to the platform root key so far.
func (e *Env) PlatformCalls() int64 {
	p := e.Platform.Calls()
	return p.Wrap + p.Unwrap + p.Describe
}
