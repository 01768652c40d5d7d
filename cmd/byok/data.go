package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openbyok/byok/client"
)

// maxDataInput caps what encrypt and decrypt read: a data call carries
// about 6 MiB of payload (8 MiB of base64 body).
const maxDataInput = 6 << 20

// dataFlags are the flags of encrypt and decrypt.
type dataFlags struct {
	keyFlags
	scope  string
	aad    string
	binary bool
}

func (f *dataFlags) register(fs *pflag.FlagSet, binary string) {
	fs.StringVar(&f.scope, "scope", "", "the `scope` (app, bot) the data belongs to (required)")
	fs.StringVar(&f.aad, "aad", "", "associated `text` bound to the ciphertext; decrypt needs the same")
	fs.BoolVar(&f.binary, "binary", false, binary)
	f.keyFlags.register(fs)
}

// connect checks the flags and returns the client.
func (f *dataFlags) connect() (*client.Client, error) {
	c, err := f.keyFlags.connect()
	if err != nil {
		return nil, err
	}
	if f.scope == "" {
		return nil, usagef("--scope is required: the scope the data belongs to")
	}
	return c, nil
}

// readInput reads stdin up to the data call's limit.
func readInput(stdin io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(stdin, maxDataInput+1))
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

// encryptCmd encrypts stdin with a service token and writes the
// ciphertext to stdout: base64 and a newline, or raw bytes with --binary.
func encryptCmd() *cobra.Command {
	var f dataFlags
	c := &cobra.Command{
		Use:   "encrypt --tenant T --scope S [--aad TEXT] [--binary] < plaintext > ciphertext",
		Short: "encrypt stdin for a tenant's scope (service)",
		Example: `  echo hello | byok encrypt --tenant acme --scope chat > ct.b64
  byok encrypt --tenant acme --scope files --aad invoice-42 --binary < invoice.pdf > invoice.pdf.byok`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.connect()
			if err != nil {
				return err
			}
			in, err := readInput(cmd.InOrStdin())
			if err != nil {
				return err
			}
			ct, err := c.Encrypt(cmd.Context(), f.tenant, f.scope, in, f.aadBytes())
			if err != nil {
				return apiError(err)
			}
			stdout := cmd.OutOrStdout()
			switch {
			case f.json:
				return printJSON(stdout, map[string][]byte{"ciphertext": ct})
			case f.binary:
				_, err = stdout.Write(ct)
			default:
				_, err = fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(ct))
			}
			return err
		},
	}
	f.register(c.Flags(), "write the ciphertext as raw bytes instead of base64")
	return c
}

// decryptCmd decrypts a ciphertext read from stdin (base64, white space
// ignored; raw bytes with --binary) with a service token and writes the
// plaintext to stdout as it is.
func decryptCmd() *cobra.Command {
	var f dataFlags
	c := &cobra.Command{
		Use:   "decrypt --tenant T --scope S [--aad TEXT] [--binary] < ciphertext > plaintext",
		Short: "decrypt stdin for a tenant's scope (service)",
		Example: `  byok decrypt --tenant acme --scope chat < ct.b64
  byok decrypt --tenant acme --scope files --aad invoice-42 --binary < invoice.pdf.byok > invoice.pdf`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.connect()
			if err != nil {
				return err
			}
			in, err := readInput(cmd.InOrStdin())
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
			pt, err := c.Decrypt(cmd.Context(), f.tenant, f.scope, in, f.aadBytes())
			if err != nil {
				return apiError(err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), map[string][]byte{"plaintext": pt})
			}
			_, err = cmd.OutOrStdout().Write(pt)
			return err
		},
	}
	f.register(c.Flags(), "read the ciphertext as raw bytes instead of base64")
	return c
}
