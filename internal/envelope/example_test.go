package envelope_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"log"

	"github.com/openbyok/byok/internal/envelope"
)

func Example() {
	// A DEK and its id; the keyring keeps the DEK wrapped under a tenant key.
	dek := make([]byte, envelope.KeySize)
	rand.Read(dek)
	var id envelope.KeyID
	rand.Read(id[:])
	aead, err := envelope.NewAEAD(dek)
	if err != nil {
		log.Fatal(err)
	}
	if err := envelope.ValidateIDs("tenant-a", "bot-1"); err != nil {
		log.Fatal(err)
	}
	ct := envelope.Seal(nil, aead, id, "tenant-a", "bot-1", []byte("hello"), []byte("message 42"))

	// Reading it back: the header names the DEK to look up.
	got, err := envelope.ParseID(ct)
	if err != nil || got != id {
		log.Fatal(err)
	}
	pt, err := envelope.Open(nil, aead, "tenant-a", "bot-1", ct, []byte("message 42"))
	fmt.Printf("%s %v\n", pt, err)

	// Under another tenant, the same bytes do not open.
	_, err = envelope.Open(nil, aead, "tenant-b", "bot-1", ct, []byte("message 42"))
	fmt.Println(err)
	// Output:
	// hello <nil>
	// envelope: message authentication failed
}

func ExampleNewWriter() {
	dek := make([]byte, envelope.KeySize)
	rand.Read(dek)
	id := envelope.KeyID{1}

	var stream bytes.Buffer
	w, err := envelope.NewWriter(&stream, dek, id, "tenant-a", "archive", nil)
	if err != nil {
		log.Fatal(err)
	}
	io.WriteString(w, "a large payload, one 64 KiB segment at a time")
	if err := w.Close(); err != nil { // Close writes the final segment
		log.Fatal(err)
	}

	h, err := envelope.ReadStreamHeader(&stream)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(h.ID() == id)
	r, err := envelope.NewReader(&stream, h, dek, "tenant-a", "archive", nil)
	if err != nil {
		log.Fatal(err)
	}
	pt, err := io.ReadAll(r)
	fmt.Printf("%s %v\n", pt, err)
	// Output:
	// true
	// a large payload, one 64 KiB segment at a time <nil>
}

// The key hierarchy: a tenant key derived from its two shares wraps the
// DEKs, which encrypt the data.
func ExampleDeriveTenantKey() {
	customerShare, platformShare := make([]byte, envelope.KeySize), make([]byte, envelope.KeySize)
	rand.Read(customerShare) // in byok: unwrapped by the customer's key in its vault
	rand.Read(platformShare) // in byok: unwrapped by the platform root key
	tk, err := envelope.DeriveTenantKey(customerShare, platformShare, "tenant-a", envelope.CustomerManaged, 1)
	if err != nil {
		log.Fatal(err)
	}
	tkAEAD, err := envelope.NewAEAD(tk)
	if err != nil {
		log.Fatal(err)
	}

	dek := make([]byte, envelope.KeySize)
	rand.Read(dek)
	id := envelope.KeyID{7}
	wrapped := envelope.WrapDEK(tkAEAD, id, "tenant-a", "bot-1", dek) // stored in the metadata store
	fmt.Println(len(wrapped) == envelope.WrappedDEKSize)

	got, err := envelope.UnwrapDEK(tkAEAD, id, "tenant-a", "bot-1", wrapped)
	fmt.Println(bytes.Equal(got, dek), err)
	_, err = envelope.UnwrapDEK(tkAEAD, id, "tenant-a", "bot-2", wrapped) // another scope
	fmt.Println(err)
	// Output:
	// true
	// true <nil>
	// envelope: message authentication failed
}
