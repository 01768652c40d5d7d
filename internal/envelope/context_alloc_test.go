//go:build !race

package envelope

import (
	"bytes"
	"testing"
)

// Context.Seal and Context.Open make one allocation, their result, whatever
// the aad (up to 64 KiB; past maxInlineAD the associated data is built in
// a pooled buffer, which the race detector drops at random).
func TestContextOneAllocation(t *testing.T) {
	aead := mustAEAD(t, testKey)
	pt := make([]byte, 1000)
	for _, ids := range [][2]string{{"tenant", "scope"}, {"tenant", longID}} {
		c := mustContext(t, ids[0], ids[1])
		for _, aad := range [][]byte{nil, []byte("row 42"), bytes.Repeat([]byte{1}, 64<<10)} {
			ct := c.Seal(aead, testID, pt, aad)
			seal := testing.AllocsPerRun(100, func() { c.Seal(aead, testID, pt, aad) })
			open := testing.AllocsPerRun(100, func() { c.Open(aead, ct, aad) })
			if seal != 1 || open != 1 {
				t.Errorf("ids of %d and %d bytes, %d bytes of aad: Context.Seal made %v allocations, Context.Open %v; want 1", len(ids[0]), len(ids[1]), len(aad), seal, open)
			}
		}
	}
}
