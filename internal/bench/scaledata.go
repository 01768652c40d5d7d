package bench

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/internal/envelope"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/store/sqlite"
)

// oldData is the data the scale measure's tenants wrote before the run:
// one DEK per (tenant, scope) in the store, as another replica or an
// earlier process would have left it. The DEKs are derived from a random
// seed, so that a ciphertext under any of them can be made when it is
// read instead of being held in memory.
type oldData struct{ seed [32]byte }

func newOldData() oldData {
	var d oldData
	rand.Read(d.seed[:])
	return d
}

// dek returns the DEK of (tenant, scope) and its id: SHA-256 of the seed,
// the pair and a label.
func (d oldData) dek(tenant, scope int) ([]byte, byok.DEKID) {
	in := make([]byte, 0, 32+16+1)
	in = append(in, d.seed[:]...)
	in = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(in, uint64(tenant)), uint64(scope))
	key := sha256.Sum256(append(in, 'k'))
	h := sha256.Sum256(append(in, 'i'))
	var id byok.DEKID
	copy(id[:], h[:])
	return key[:], id
}

// oldReader makes one caller's ciphertexts of old data, reusing its buffer
// and the AEADs of recent pairs, so that the measure's own garbage does
// not weigh on the calls it times.
type oldReader struct {
	d     oldData
	buf   []byte
	aeads map[[2]int]cipher.AEAD
}

// maxOldAEADs bounds an oldReader's AEADs, the hottest pairs of a Zipf
// draw; the map starts over when full.
const maxOldAEADs = 4096

func (d oldData) reader() *oldReader {
	return &oldReader{d: d, aeads: make(map[[2]int]cipher.AEAD)}
}

// ciphertext returns pt sealed under the old DEK of (tenant, scope), valid
// until the next call.
func (r *oldReader) ciphertext(tenant, scope int, pt []byte) []byte {
	p := [2]int{tenant, scope}
	aead := r.aeads[p]
	key, id := r.d.dek(tenant, scope)
	if aead == nil {
		var err error
		if aead, err = envelope.NewAEAD(key); err != nil {
			panic(err) // a 32-byte key
		}
		if len(r.aeads) == maxOldAEADs {
			clear(r.aeads)
		}
		r.aeads[p] = aead
	}
	r.buf = envelope.Seal(r.buf[:0], aead, envelope.KeyID(id), tenantName(tenant), scopeName(scope), pt, nil)
	return r.buf
}

// insertDEK writes a DEK row straight to SQLite, for the bulk set-ups
// no keyring could write fast enough.
const insertDEK = `INSERT INTO deks (id, tenant, scope, kind, epoch, wrapped, created) VALUES (?, ?, ?, ?, ?, ?, ?)`

// seedOldData writes the old DEK of every (tenant, scope) of o into the
// store at path, wrapped under the tenant key its scope uses (the customer
// key's for BYOK tenants): o.Tenants × o.Scopes rows, written straight to
// SQLite in large transactions, as no keyring could write them fast
// enough.
func seedOldData(ctx context.Context, db *sqlite.DB, path string, platform, customer kms.Provider, o ScaleOptions, byokEvery int, d oldData) error {
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		return err
	}
	defer raw.Close()
	created := time.Now().Add(-time.Hour).UnixNano()
	const perTx = 500 // tenants per transaction
	for first := 0; first < o.Tenants; first += perTx {
		tx, err := raw.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, insertDEK)
		if err != nil {
			tx.Rollback()
			return err
		}
		for i := first; i < min(first+perTx, o.Tenants); i++ {
			if err := seedTenant(ctx, db, stmt, platform, customer, o, i, i%byokEvery == 0, d, created); err != nil {
				tx.Rollback()
				return fmt.Errorf("seeding the old DEKs of tenant %s: %w", tenantName(i), err)
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// seedTenant writes the old DEKs of tenant i's scopes with stmt.
func seedTenant(ctx context.Context, db *sqlite.DB, stmt *sql.Stmt, platform, customer kms.Provider, o ScaleOptions, i int, isBYOK bool, d oldData, created int64) error {
	t := tenantName(i)
	kind, customerKMS := byok.PlatformManaged, platform
	if isBYOK {
		kind, customerKMS = byok.CustomerManaged, customer
	}
	rec, err := db.TenantKey(ctx, t, kind)
	if err != nil {
		return err
	}
	c, err := customerKMS.Unwrap(ctx, rec.CustomerShare)
	if err != nil {
		return err
	}
	p, err := platform.Unwrap(ctx, rec.PlatformShare)
	if err != nil {
		return err
	}
	key, err := envelope.DeriveTenantKey(c, p, t, uint8(kind), rec.Epoch)
	if err != nil {
		return err
	}
	tk, err := envelope.NewAEAD(key)
	if err != nil {
		return err
	}
	for s := range o.Scopes {
		dek, id := d.dek(i, s)
		w := envelope.WrapDEK(tk, envelope.KeyID(id), t, scopeName(s), dek)
		if _, err := stmt.ExecContext(ctx, id[:], t, scopeName(s), int64(kind), int64(rec.Epoch), w, created); err != nil {
			return err
		}
	}
	return nil
}
