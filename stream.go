package byok

import (
	"context"
	"io"

	"github.com/openbyok/byok/internal/envelope"
)

// EncryptStream returns a writer that encrypts everything written to it for
// a tenant's scope, binding aad, and writes the ciphertext to w in
// segments, so a payload of any size never sits in memory. Close writes the
// final segment; a stream not closed is a truncated stream that
// DecryptStream rejects. Each Write fails once the tenant key is revoked.
func (k *Keyring) EncryptStream(ctx context.Context, tenant, scope string, w io.Writer, aad []byte) (io.WriteCloser, error) {
	if err := validate(ctx, tenant, scope, 0, aad); err != nil {
		return nil, err
	}
	a, err := k.activeDEK(ctx, tenant, scope)
	if err != nil {
		return nil, err
	}
	sw, err := envelope.NewWriter(w, a.dek.key, envelope.KeyID(a.dek.id), tenant, scope, aad)
	if err != nil {
		return nil, err
	}
	return &guardedWriter{k: k, ctx: ctx, tk: a.dek.tk, w: sw}, nil
}

// DecryptStream reads a stream made by EncryptStream from r and returns a
// reader of its plaintext. The reader returns an error wrapping
// [ErrDecrypt] if the stream was altered, reordered or truncated, and
// releases no byte of a segment before the segment authenticates.
func (k *Keyring) DecryptStream(ctx context.Context, tenant, scope string, r io.Reader, aad []byte) (io.Reader, error) {
	if err := validate(ctx, tenant, scope, 0, aad); err != nil {
		return nil, err
	}
	h, err := envelope.ReadStreamHeader(r)
	if err != nil {
		return nil, formatError(err)
	}
	d, err := k.dekByID(ctx, tenant, scope, DEKID(h.ID()))
	if err != nil {
		return nil, err
	}
	sr, err := envelope.NewReader(r, h, d.key, tenant, scope, aad)
	if err != nil {
		return nil, openError(err)
	}
	return &guardedReader{k: k, ctx: ctx, tk: d.tk, r: sr}, nil
}

// guardedWriter stops a stream as soon as its tenant key may no longer be
// used.
type guardedWriter struct {
	k   *Keyring
	ctx context.Context
	tk  *tenantKey
	w   io.WriteCloser
}

func (g *guardedWriter) Write(p []byte) (int, error) {
	if err := g.k.usableOrErr(g.ctx, g.tk); err != nil {
		return 0, err
	}
	return g.w.Write(p)
}

func (g *guardedWriter) Close() error {
	if err := g.k.usableOrErr(g.ctx, g.tk); err != nil {
		return err
	}
	return g.w.Close()
}

// guardedReader stops a stream as soon as its tenant key may no longer be
// used.
type guardedReader struct {
	k   *Keyring
	ctx context.Context
	tk  *tenantKey
	r   io.Reader
}

func (g *guardedReader) Read(p []byte) (int, error) {
	if err := g.k.usableOrErr(g.ctx, g.tk); err != nil {
		return 0, err
	}
	n, err := g.r.Read(p)
	if err != nil && err != io.EOF {
		err = openError(err)
	}
	return n, err
}

// usableOrErr returns nil if t may be used now, running a due check.
func (k *Keyring) usableOrErr(ctx context.Context, t *tenantKey) error {
	if k.usable(t) {
		return nil
	}
	_, err := k.ensure(ctx, t)
	return err
}
