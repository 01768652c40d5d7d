package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"slices"
	"strconv"
	"time"
)

// hashVersion is the first field of every canonical encoding; a new
// encoding gets a new version.
const hashVersion = "byok-audit-v1"

// GenesisHash is the PrevHash of the first event of every chain.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// timeLayout is the canonical form of Event.Time: UTC, always nine
// fractional digits.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// canonicalTime returns t in the canonical form the hash covers.
func canonicalTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// ComputeHash returns the lowercase hex SHA-256 of e's canonical encoding
// (docs/audit.md): every field but Hash itself, each as a 4-byte
// big-endian length and its UTF-8 bytes, in a fixed order.
func ComputeHash(e *Event) string {
	h := sha256.New()
	w := fieldWriter{h: h}
	w.str(hashVersion)
	w.str(e.Tenant)
	w.str(strconv.FormatUint(e.Seq, 10))
	w.str(e.PrevHash)
	w.str(e.ID)
	w.str(canonicalTime(e.Time))
	w.str(string(e.Actor.Kind))
	w.str(e.Actor.ID)
	w.str(e.Action)
	w.str(e.Target)
	w.str(string(e.Before))
	w.str(string(e.After))
	w.str(string(e.Outcome))
	w.str(e.Reason)
	var v VaultCall
	if e.Vault != nil {
		v = *e.Vault
	}
	w.str(v.Operation)
	w.str(v.KeyID)
	w.str(string(v.Purpose))
	w.str(v.RequestID)
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.str(strconv.Itoa(len(keys)))
	for _, k := range keys {
		w.str(k)
		w.str(e.Details[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fieldWriter writes length-prefixed fields to a hash.
type fieldWriter struct {
	h   hash.Hash
	buf [4]byte
}

func (w *fieldWriter) str(s string) {
	binary.BigEndian.PutUint32(w.buf[:], uint32(len(s)))
	w.h.Write(w.buf[:])
	w.h.Write([]byte(s))
}
