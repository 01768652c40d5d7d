//go:build !race

// The race detector makes sync.Pool drop buffers at random, so these
// allocation counts hold only without it.

package envelope

import (
	"bytes"
	"testing"
)

// TestSealOpenDoNotAllocate checks the contract of Seal and Open: with a
// pre-sized dst (and aad of up to 64 KiB) they do not allocate.
func TestSealOpenDoNotAllocate(t *testing.T) {
	aead := mustAEAD(t, testKey)
	pt := make([]byte, 1000)
	for _, aad := range [][]byte{nil, []byte("row 42"), bytes.Repeat([]byte{1}, 64<<10)} {
		dst := make([]byte, 0, len(pt)+Overhead)
		ct := Seal(nil, aead, testID, "tenant", longID, pt, aad)
		out := make([]byte, 0, len(pt))
		seal := testing.AllocsPerRun(100, func() { dst = Seal(dst[:0], aead, testID, "tenant", longID, pt, aad) })
		open := testing.AllocsPerRun(100, func() { out, _ = Open(out[:0], aead, "tenant", longID, ct, aad) })
		if seal != 0 || open != 0 {
			t.Errorf("with %d bytes of aad: Seal made %v allocations, Open %v; want 0", len(aad), seal, open)
		}
	}
}
