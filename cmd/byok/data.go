package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/openbyok/byok/client"
)

// maxDataInput caps what encrypt and decrypt read: a data call carries
// about 6 MiB of payload (8 MiB of base64 body).
const maxDataInput = 6 << 20

// dataStdin is where encrypt and decrypt read their input; tests replace
// it.
var dataStdin io.Reader = os.Stdin

// dataFlags are the flags of encrypt and decrypt.
type dataFlags struct {
	keyFlags
	scope  string
	aad    string
	binary bool
}

func (f *dataFlags) parse(fs *flag.FlagSet, args []string) (*client.Client, error) {
	fs.StringVar(&f.scope, "scope", "", "the `scope` (app, bot) the data belongs to (required)")
	fs.StringVar(&f.aad, "aad", "", "associated `text` bound to the ciphertext; decrypt needs the same")
	c, err := f.keyFlags.parse(fs, args)
	if err != nil {
		return nil, err
	}
	if f.scope == "" {
		return nil, usagef("--scope is required: the scope the data belongs to")
	}
	return c, nil
}

// readInput reads stdin up to the data call's limit.
func readInput() ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(dataStdin, maxDataInput+1))
	if err != nil {
		return nil, fmt.Errorf("read stdin: %w", err)
	}
	if len(b) > maxDataInput {
		return nil, fmt.Errorf("the input is over %d MiB, the limit of a data call; encrypt large data with the Go library's streams", maxDataInput>>20)
	}
	return b, nil
}

// aadBytes returns the --aad text as bytes, nil when unset.
func (f *dataFlags) aadBytes() []byte {
	if f.aad == "" {
		return nil
	}
	return []byte(f.aad)
}

// runEncrypt encrypts stdin with a service token and writes the
// ciphertext to stdout: base64 and a newline, or raw bytes with --binary.
func runEncrypt(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f dataFlags
	fs := newFlagSet("encrypt", "--tenant T --scope S [--aad TEXT] [--binary] < plaintext > ciphertext", stderr)
	fs.BoolVar(&f.binary, "binary", false, "write the ciphertext as raw bytes instead of base64")
	c, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	in, err := readInput()
	if err != nil {
		return err
	}
	ct, err := c.Encrypt(ctx, f.tenant, f.scope, in, f.aadBytes())
	if err != nil {
		return apiError(err)
	}
	switch {
	case f.json:
		return printJSON(stdout, map[string][]byte{"ciphertext": ct})
	case f.binary:
		_, err = stdout.Write(ct)
	default:
		_, err = fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(ct))
	}
	return err
}

// runDecrypt decrypts a ciphertext read from stdin (base64, white space
// ignored; raw bytes with --binary) with a service token and writes the
// plaintext to stdout as it is.
func runDecrypt(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f dataFlags
	fs := newFlagSet("decrypt", "--tenant T --scope S [--aad TEXT] [--binary] < ciphertext > plaintext", stderr)
	fs.BoolVar(&f.binary, "binary", false, "read the ciphertext as raw bytes instead of base64")
	c, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	in, err := readInput()
	if err != nil {
		return err
	}
	if !f.binary {
		text := bytes.Join(bytes.Fields(in), nil)
		ct := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
		n, err := base64.StdEncoding.Decode(ct, text)
		if err != nil {
			return fmt.Errorf("the input is not base64 (%v): pipe in what byok encrypt wrote, or give --binary for raw bytes", err)
		}
		in = ct[:n]
	}
	pt, err := c.Decrypt(ctx, f.tenant, f.scope, in, f.aadBytes())
	if err != nil {
		return apiError(err)
	}
	if f.json {
		return printJSON(stdout, map[string][]byte{"plaintext": pt})
	}
	_, err = stdout.Write(pt)
	return err
}
