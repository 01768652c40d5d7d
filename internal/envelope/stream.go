package envelope

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Layout of a stream (docs/format.md, "Stream").
const (
	saltSize         = 32
	streamIDOffset   = prefixSize              // 6
	streamSaltOffset = streamIDOffset + idSize // 22
	encryptedSegment = SegmentSize + tagSize
	flagLast         = 1 // last byte of the nonce of the final segment
)

const (
	// StreamHeaderSize is the size of a v1 stream header: magic, version,
	// type, key id and a 32-byte salt.
	StreamHeaderSize = streamSaltOffset + saltSize
	// SegmentSize is the number of plaintext bytes in every segment of a
	// stream but the last, which holds 0 to SegmentSize bytes. Each
	// segment is followed by its 16-byte tag.
	SegmentSize = 64 << 10
)

// ErrTruncated is returned by a stream reader when the stream ends cleanly
// at a segment boundary (or right after its header) before its final
// segment. It wraps [ErrAuth]: errors.Is(err, ErrAuth) is true. A stream
// cut inside a segment cannot be told apart from tampering and returns
// ErrAuth itself.
var ErrTruncated error = truncatedError{}

type truncatedError struct{}

func (truncatedError) Error() string {
	return "envelope: stream truncated: it ends before its final segment"
}

func (truncatedError) Unwrap() error { return ErrAuth }

var errWriterClosed = errors.New("envelope: write to a closed stream writer")

// StreamHeader is the header of a v1 stream: the id of its DEK and the
// random salt from which the stream's key is derived.
type StreamHeader struct {
	id   KeyID
	salt [saltSize]byte
}

// ID returns the id of the DEK the stream is encrypted under.
func (h StreamHeader) ID() KeyID { return h.id }

func (h StreamHeader) appendTo(b []byte) []byte {
	b = appendPrefix(b, typeStream)
	b = append(b, h.id[:]...)
	return append(b, h.salt[:]...)
}

// parseStreamHeader parses the first StreamHeaderSize bytes of b, which
// must hold at least that many.
func parseStreamHeader(b []byte) (StreamHeader, error) {
	if err := checkPrefix(b, typeStream, StreamHeaderSize); err != nil {
		return StreamHeader{}, err
	}
	var h StreamHeader
	copy(h.id[:], b[streamIDOffset:])
	copy(h.salt[:], b[streamSaltOffset:])
	return h, nil
}

// ReadStreamHeader reads the [StreamHeaderSize] bytes of a stream header
// from r and checks them, so that the caller learns the DEK id before
// calling [NewReader] on the rest of r. It authenticates nothing (the first
// segment does). Errors: a [*FormatError] if the bytes are not the header of
// a v1 stream (including a single-shot message or an r that ends early), or
// the error of r.
func ReadStreamHeader(r io.Reader) (StreamHeader, error) {
	var buf [StreamHeaderSize]byte
	n, err := io.ReadFull(r, buf[:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return StreamHeader{}, fmt.Errorf("envelope: reading stream header: %w", err)
	}
	return parseStreamHeader(buf[:n]) // rejects a short header

}

// streamAEAD derives the stream's key from the DEK with HKDF-SHA256 (the
// header's salt as salt; the header, tenant, scope and aad as info) and
// returns its AES-256-GCM.
func streamAEAD(dek []byte, h StreamHeader, tenant, scope string, aad []byte) (cipher.AEAD, error) {
	info := appendContext(h.appendTo(make([]byte, 0, StreamHeaderSize+2+len(tenant)+len(scope)+8+len(aad))), tenant, scope, aad)
	key, err := hkdf.Key(sha256.New, dek, h.salt[:], string(info), KeySize)
	if err != nil {
		return nil, fmt.Errorf("envelope: deriving stream key: %w", err)
	}
	defer clear(key)
	return NewAEAD(key)
}

func checkStreamArgs(dek []byte, tenant, scope string) error {
	if err := checkKey("dek", dek); err != nil {
		return err
	}
	return ValidateIDs(tenant, scope)
}

// segmentNonce sets n to the nonce of segment i: 3 zero bytes, i as a
// big-endian uint64, and the last-segment flag.
func segmentNonce(n *[nonceSize]byte, i uint64, last bool) {
	binary.BigEndian.PutUint64(n[3:11], i)
	n[11] = 0
	if last {
		n[11] = flagLast
	}
}

// NewWriter writes the header of a new v1 stream to w and returns a writer
// that encrypts what is written to it under a key derived from dek (the DEK
// whose id is id), a random salt, the tenant, the scope and aad. The
// plaintext is cut in segments of [SegmentSize] bytes, each sealed with a
// counter nonce; the last one carries a flag. A segment is written to w
// when it is full and more data follows, or on Close.
//
// Close seals the final segment (empty if nothing was written) and must be
// called, or the stream is truncated; it does not close w. After an error
// from w, every call returns that error. The writer holds one segment in
// memory (sealing it overwrites the plaintext in place). It is not safe for
// concurrent use.
//
// Errors: an [*InputError] if dek is not 32 bytes or tenant or scope is
// invalid; the error of w if writing the header fails.
func NewWriter(w io.Writer, dek []byte, id KeyID, tenant, scope string, aad []byte) (io.WriteCloser, error) {
	return newWriter(w, rand.Reader, dek, id, tenant, scope, aad)
}

// newWriter is NewWriter with the salt read from rnd.
func newWriter(w io.Writer, rnd io.Reader, dek []byte, id KeyID, tenant, scope string, aad []byte) (*streamWriter, error) {
	if err := checkStreamArgs(dek, tenant, scope); err != nil {
		return nil, err
	}
	h := StreamHeader{id: id}
	if _, err := io.ReadFull(rnd, h.salt[:]); err != nil {
		return nil, fmt.Errorf("envelope: reading random salt: %w", err)
	}
	aead, err := streamAEAD(dek, h, tenant, scope, aad)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(h.appendTo(make([]byte, 0, StreamHeaderSize))); err != nil {
		return nil, fmt.Errorf("envelope: writing stream header: %w", err)
	}
	return &streamWriter{w: w, aead: aead, buf: make([]byte, 0, encryptedSegment)}, nil
}

type streamWriter struct {
	w     io.Writer
	aead  cipher.AEAD
	buf   []byte // plaintext of the current segment; room for its tag
	nonce [nonceSize]byte
	next  uint64 // index of the current segment
	err   error  // sticky
}

// Write encrypts p. It returns len(p) and nil, or the error of the
// underlying writer (or of a closed writer) and how much of p it took.
func (sw *streamWriter) Write(p []byte) (int, error) {
	n := 0
	for sw.err == nil && len(p) > 0 {
		if len(sw.buf) == SegmentSize {
			sw.flush(false)
			continue
		}
		c := copy(sw.buf[len(sw.buf):SegmentSize], p)
		sw.buf = sw.buf[:len(sw.buf)+c]
		p = p[c:]
		n += c
	}
	if sw.err != nil {
		return n, sw.err
	}
	return n, nil
}

// Close seals and writes the final segment. Later calls return an error.
func (sw *streamWriter) Close() error {
	if sw.err != nil {
		return sw.err
	}
	sw.flush(true)
	if sw.err != nil {
		return sw.err
	}
	sw.err = errWriterClosed
	return nil
}

// flush seals the buffered segment in place and writes it.
func (sw *streamWriter) flush(last bool) {
	segmentNonce(&sw.nonce, sw.next, last)
	seg := sw.aead.Seal(sw.buf[:0], sw.nonce[:], sw.buf, nil)
	if _, err := sw.w.Write(seg); err != nil {
		sw.err = fmt.Errorf("envelope: writing stream segment %d: %w", sw.next, err)
		return
	}
	sw.next++
	sw.buf = sw.buf[:0]
}

// NewReader returns a reader of the plaintext of the stream whose header h
// was read from r by [ReadStreamHeader]; r is positioned after the header.
// dek, tenant, scope and aad must be those the stream was written with.
//
// Each segment is authenticated before any of its bytes is returned. The
// reader returns [ErrAuth] on any tampering (altered, reordered, duplicated
// or swapped segments, trailing bytes, a wrong key, tenant, scope or aad),
// [ErrTruncated] (which wraps ErrAuth) if the stream ends at a segment
// boundary before its final segment, a [*FormatError] for a final segment
// that is empty while not the first (no conforming writer makes one), and
// the error of r. Errors are sticky; io.EOF follows the final segment.
//
// The reader holds one segment in memory, and a copy of it while checking
// a final segment that is full. It is not safe for concurrent use.
// NewReader returns an [*InputError] if dek is not 32 bytes or tenant or
// scope is invalid.
func NewReader(r io.Reader, h StreamHeader, dek []byte, tenant, scope string, aad []byte) (io.Reader, error) {
	if err := checkStreamArgs(dek, tenant, scope); err != nil {
		return nil, err
	}
	aead, err := streamAEAD(dek, h, tenant, scope, aad)
	if err != nil {
		return nil, err
	}
	return &streamReader{r: r, aead: aead, buf: make([]byte, encryptedSegment+1)}, nil
}

type streamReader struct {
	r         io.Reader
	aead      cipher.AEAD
	buf       []byte // one encrypted segment plus one byte of look-ahead
	ahead     bool   // the next segment's first byte has been read: aheadByte
	aheadByte byte
	out       []byte // authenticated plaintext not yet returned, within buf
	nonce     [nonceSize]byte
	next      uint64 // index of the next segment to read
	err       error  // sticky; io.EOF after the final segment
}

func (sr *streamReader) Read(p []byte) (int, error) {
	for len(sr.out) == 0 {
		if sr.err != nil {
			return 0, sr.err
		}
		sr.out, sr.err = sr.readSegment()
	}
	n := copy(p, sr.out)
	sr.out = sr.out[n:]
	return n, nil
}

// readSegment reads, authenticates and decrypts the next segment. It
// returns io.EOF with the plaintext of the final segment.
func (sr *streamReader) readSegment() ([]byte, error) {
	have := 0
	if sr.ahead {
		sr.buf[0] = sr.aheadByte
		have = 1
	}
	n, err := io.ReadFull(sr.r, sr.buf[have:])
	n += have
	last := false
	switch {
	case err == nil: // a full segment and one more byte: not the last one
		sr.ahead = true
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		last = true
		sr.ahead = false
	default:
		return nil, fmt.Errorf("envelope: reading stream segment %d: %w", sr.next, err)
	}
	seg := sr.buf[:min(n, encryptedSegment)]
	if len(seg) < tagSize {
		if len(seg) == 0 {
			return nil, ErrTruncated
		}
		return nil, ErrAuth
	}
	var saved []byte
	if last && len(seg) == encryptedSegment {
		saved = append([]byte(nil), seg...) // to tell truncation from tampering
	}
	segmentNonce(&sr.nonce, sr.next, last)
	out, err := sr.aead.Open(seg[:0], sr.nonce[:], seg, nil)
	if err != nil {
		if saved != nil {
			segmentNonce(&sr.nonce, sr.next, false)
			if _, err := sr.aead.Open(saved[:0], sr.nonce[:], saved, nil); err == nil {
				return nil, ErrTruncated
			}
		}
		return nil, ErrAuth
	}
	if !last {
		sr.aheadByte = sr.buf[encryptedSegment]
		sr.next++
		return out, nil
	}
	if len(out) == 0 && sr.next > 0 {
		return nil, &FormatError{Reason: fmt.Sprintf("stream segment %d is an empty final segment after a full one; a conforming writer marks the last full segment final instead", sr.next)}
	}
	return out, io.EOF
}
