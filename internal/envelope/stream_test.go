package envelope

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// testPlaintext returns n bytes that differ from segment to segment.
func testPlaintext(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>16)
	}
	return b
}

func salt(b byte) io.Reader { return bytes.NewReader(bytes.Repeat([]byte{b}, saltSize)) }

func TestStreamRoundTrip(t *testing.T) {
	sizes := []int{0, 1, SegmentSize - 1, SegmentSize, SegmentSize + 1,
		2*SegmentSize - 1, 2 * SegmentSize, 2*SegmentSize + 1, 3*SegmentSize + 17}
	writes := []int{1, 1000, SegmentSize, 1 << 20}
	for _, size := range sizes {
		pt := testPlaintext(size)
		for _, chunk := range writes {
			if chunk == 1 && size > 2*SegmentSize+1 {
				continue // byte-by-byte writes of the largest sizes add nothing but time
			}
			t.Run(fmt.Sprintf("size=%d/write=%d", size, chunk), func(t *testing.T) {
				s := writeStream(t, salt(1), testKey, testID, "tenant", "scope", []byte("aad"), pt, chunk)
				segments := max(1, (size+SegmentSize-1)/SegmentSize)
				if want := StreamHeaderSize + size + segments*tagSize; len(s) != want {
					t.Fatalf("stream is %d bytes, want %d (%d segments)", len(s), want, segments)
				}
				// Read it back through a source that returns one byte at a
				// time, and check the reader's io.Reader contract.
				src := iotest.OneByteReader(bytes.NewReader(s))
				h, err := ReadStreamHeader(src)
				if err != nil || h.ID() != testID {
					t.Fatalf("ReadStreamHeader = %v, %v", h.ID(), err)
				}
				r, err := NewReader(src, h, testKey, "tenant", "scope", []byte("aad"))
				if err != nil {
					t.Fatal(err)
				}
				if err := iotest.TestReader(r, pt); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestStreamWriterHoldsOneSegment: a full segment is written only when more
// data follows, so the writer knows which segment is the last one.
func TestStreamWriterHoldsOneSegment(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, testKey, testID, "t", "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		write, want int
	}{
		{SegmentSize, StreamHeaderSize},
		{1, StreamHeaderSize + encryptedSegment},
		{SegmentSize - 1, StreamHeaderSize + encryptedSegment},
	}
	for _, s := range steps {
		if n, err := w.Write(make([]byte, s.write)); n != s.write || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		if buf.Len() != s.want {
			t.Fatalf("after writing %d bytes, %d bytes reached w, want %d", s.write, buf.Len(), s.want)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != StreamHeaderSize+2*encryptedSegment {
		t.Fatalf("after Close, %d bytes reached w", buf.Len())
	}
	if n, err := w.Write([]byte("x")); n != 0 || err == nil {
		t.Errorf("Write after Close = %d, %v; want an error", n, err)
	}
	if err := w.Close(); err == nil {
		t.Error("second Close succeeded")
	}
}

// segments cuts a stream in its header and encrypted segments.
func segments(s []byte) (header []byte, segs [][]byte) {
	header, s = s[:StreamHeaderSize], s[StreamHeaderSize:]
	for len(s) > 0 {
		n := min(len(s), encryptedSegment)
		segs = append(segs, s[:n])
		s = s[n:]
	}
	return header, segs
}

func join(header []byte, segs ...[]byte) []byte {
	return bytes.Join(append([][]byte{header}, segs...), nil)
}

// TestStreamAttacks rearranges the segments of streams under one DEK.
func TestStreamAttacks(t *testing.T) {
	pt := testPlaintext(3*SegmentSize + 10)
	a := writeStream(t, salt(1), testKey, testID, "t", "s", nil, pt, len(pt))
	b := writeStream(t, salt(2), testKey, testID, "t", "s", nil, pt, len(pt))
	ha, sa := segments(a)
	hb, sb := segments(b)
	if len(sa) != 4 || len(sb) != 4 {
		t.Fatalf("got %d and %d segments, want 4", len(sa), len(sb))
	}
	cases := []struct {
		name   string
		stream []byte
		want   error
		good   int // segments released before the error
	}{
		{"segments 1 and 2 swapped", join(ha, sa[0], sa[2], sa[1], sa[3]), ErrAuth, 1},
		{"segment 0 duplicated", join(ha, sa[0], sa[0], sa[1], sa[2], sa[3]), ErrAuth, 1},
		{"final segment duplicated", join(ha, sa[0], sa[1], sa[2], sa[3], sa[3]), ErrAuth, 3},
		{"segment 1 dropped", join(ha, sa[0], sa[2], sa[3]), ErrAuth, 1},
		{"segment 1 from another stream", join(ha, sa[0], sb[1], sa[2], sa[3]), ErrAuth, 1},
		{"final segment from another stream", join(ha, sa[0], sa[1], sa[2], sb[3]), ErrAuth, 3},
		{"header of another stream", join(hb, sa...), ErrAuth, 0},
		{"truncated at the last boundary", join(ha, sa[:3]...), ErrTruncated, 2},
		{"truncated at the first boundary", join(ha, sa[0]), ErrTruncated, 0},
		{"header only", ha, ErrTruncated, 0},
		{"truncated inside the final segment", join(ha, sa[0], sa[1], sa[2], sa[3][:5]), ErrAuth, 3},
		{"truncated inside a full segment", join(ha, sa[0], sa[1][:1000]), ErrAuth, 1},
		{"truncated inside the final tag", join(ha, sa[0], sa[1], sa[2], sa[3][:len(sa[3])-1]), ErrAuth, 3},
		{"final segment shorter than a tag", join(ha, sa[0], sa[1], sa[2], sa[3][:tagSize-1]), ErrAuth, 3},
		{"trailing byte", append(bytes.Clone(a), 0), ErrAuth, 3},
		{"trailing segment-sized garbage", append(bytes.Clone(a), make([]byte, encryptedSegment)...), ErrAuth, 3},
		{"two streams concatenated", append(bytes.Clone(a), b...), ErrAuth, 3},
	}
	for _, c := range cases {
		got, err := readStream(c.stream, testKey, "t", "s", nil)
		if err != c.want || !errors.Is(err, ErrAuth) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
		if !bytes.Equal(got, pt[:c.good*SegmentSize]) {
			t.Errorf("%s: released %d bytes, want the %d of the authenticated segments", c.name, len(got), c.good*SegmentSize)
		}
	}
}

// TestStreamFullFinalSegmentWithTrailingData: a stream whose final segment
// is full, followed by garbage, fails (the final segment is then read as a
// non-final one).
func TestStreamFullFinalSegmentWithTrailingData(t *testing.T) {
	pt := testPlaintext(SegmentSize)
	s := writeStream(t, salt(1), testKey, testID, "t", "s", nil, pt, len(pt))
	for _, extra := range []int{1, tagSize, encryptedSegment, encryptedSegment + 1} {
		_, err := readStream(append(bytes.Clone(s), make([]byte, extra)...), testKey, "t", "s", nil)
		wantAuth(t, err, fmt.Sprintf("%d trailing bytes", extra))
	}
}

func TestStreamWrongContext(t *testing.T) {
	s := writeStream(t, salt(1), testKey, testID, "tenant", "scope", []byte("aad"), []byte("hello"), 5)
	cases := []struct {
		name          string
		dek           []byte
		tenant, scope string
		aad           []byte
	}{
		{"wrong DEK", otherKey, "tenant", "scope", []byte("aad")},
		{"wrong tenant", testKey, "tenanT", "scope", []byte("aad")},
		{"wrong scope", testKey, "tenant", "scopE", []byte("aad")},
		{"wrong aad", testKey, "tenant", "scope", []byte("aaD")},
		{"tenant/scope boundary", testKey, "tenants", "cope", []byte("aad")},
	}
	for _, c := range cases {
		got, err := readStream(s, c.dek, c.tenant, c.scope, c.aad)
		wantAuth(t, err, c.name)
		if len(got) != 0 {
			t.Errorf("%s: released %d bytes", c.name, len(got))
		}
	}
	// The key id is bound too, through the header in the key derivation.
	altered := bytes.Clone(s)
	altered[streamIDOffset] ^= 1
	_, err := readStream(altered, testKey, "tenant", "scope", []byte("aad"))
	wantAuth(t, err, "altered key id")
}

// craftStream seals the given segments with arbitrary indexes and flags,
// which a conforming writer never does.
func craftStream(t *testing.T, segs []craftedSegment) []byte {
	t.Helper()
	h := StreamHeader{id: testID}
	aead, err := streamAEAD(testKey, h, "t", "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	out := h.appendTo(nil)
	var nonce [nonceSize]byte
	for _, s := range segs {
		segmentNonce(&nonce, s.index, s.last)
		out = aead.Seal(out, nonce[:], s.pt, nil)
	}
	return out
}

type craftedSegment struct {
	pt    []byte
	index uint64
	last  bool
}

func TestStreamNonConforming(t *testing.T) {
	full := testPlaintext(SegmentSize)
	cases := []struct {
		name string
		segs []craftedSegment
		want string // error text; empty for ErrAuth
	}{
		{"empty final segment after a full one", []craftedSegment{{full, 0, false}, {nil, 1, true}}, "segment 1 is an empty final segment after a full one"},
		{"short non-final segment", []craftedSegment{{full[:10], 0, false}, {nil, 1, true}}, ""},
		{"final segment not at the end", []craftedSegment{{full, 0, true}, {full[:1], 1, true}}, ""},
		{"first index 1", []craftedSegment{{full[:1], 1, true}}, ""},
	}
	for _, c := range cases {
		_, err := readStream(craftStream(t, c.segs), testKey, "t", "s", nil)
		if c.want == "" {
			wantAuth(t, err, c.name)
			continue
		}
		wantFormatError(t, err, c.name)
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not say %q", c.name, err, c.want)
		}
	}
	// The crafting itself is right: a conforming layout reads back.
	got, err := readStream(craftStream(t, []craftedSegment{{full, 0, false}, {full[:3], 1, true}}), testKey, "t", "s", nil)
	if err != nil || len(got) != SegmentSize+3 {
		t.Fatalf("crafted conforming stream: %d bytes, %v", len(got), err)
	}
}

// failingWriter fails after accepting n bytes.
type failingWriter struct{ n int }

var errWrite = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, errWrite
	}
	w.n -= len(p)
	return len(p), nil
}

func TestStreamWriterErrors(t *testing.T) {
	if _, err := NewWriter(&failingWriter{0}, testKey, testID, "t", "s", nil); !errors.Is(err, errWrite) {
		t.Errorf("NewWriter on a failing writer: %v, want %v", err, errWrite)
	}
	w, err := NewWriter(&failingWriter{StreamHeaderSize}, testKey, testID, "t", "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := w.Write(make([]byte, 2*SegmentSize))
	if n != SegmentSize || !errors.Is(err, errWrite) || !strings.Contains(err.Error(), "segment 0") {
		t.Errorf("Write = %d, %v; want %d and the writer's error naming segment 0", n, err, SegmentSize)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, errWrite) {
		t.Errorf("Write after an error: %v, want the sticky error", err)
	}
	if err := w.Close(); !errors.Is(err, errWrite) {
		t.Errorf("Close after an error: %v, want the sticky error", err)
	}
	// An error on the final segment comes from Close.
	w, _ = NewWriter(&failingWriter{StreamHeaderSize}, testKey, testID, "t", "s", nil)
	if _, err := w.Write([]byte("small")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, errWrite) {
		t.Errorf("Close = %v, want %v", err, errWrite)
	}
	if _, err := newWriter(io.Discard, iotest.ErrReader(errWrite), testKey, testID, "t", "s", nil); !errors.Is(err, errWrite) {
		t.Errorf("newWriter with a failing random source: %v", err)
	}
}

func TestStreamReaderIOErrors(t *testing.T) {
	s := writeStream(t, salt(1), testKey, testID, "t", "s", nil, testPlaintext(SegmentSize+1), SegmentSize+1)
	if _, err := ReadStreamHeader(iotest.ErrReader(errWrite)); !errors.Is(err, errWrite) {
		t.Errorf("ReadStreamHeader: %v, want %v", err, errWrite)
	}
	src := io.MultiReader(bytes.NewReader(s[:StreamHeaderSize+100]), iotest.ErrReader(errWrite))
	h, err := ReadStreamHeader(src)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(src, h, testKey, "t", "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if !errors.Is(err, errWrite) || errors.Is(err, ErrAuth) || len(got) != 0 {
		t.Errorf("ReadAll = %d bytes, %v; want the source's error", len(got), err)
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, errWrite) {
		t.Errorf("Read after an error: %v, want the sticky error", err)
	}
}

func TestStreamInputErrors(t *testing.T) {
	h := StreamHeader{id: testID}
	cases := []struct {
		name, arg string
		err       error
	}{
		{"NewWriter short dek", "dek", second(NewWriter(io.Discard, testKey[:16], testID, "t", "s", nil))},
		{"NewWriter empty tenant", "tenant id", second(NewWriter(io.Discard, testKey, testID, "", "s", nil))},
		{"NewReader long scope", "scope id", second(NewReader(nil, h, testKey, "t", tooLong, nil))},
		{"NewReader nil dek", "dek", second(NewReader(nil, h, nil, "t", "s", nil))},
	}
	for _, c := range cases {
		var ie *InputError
		if !errors.As(c.err, &ie) || ie.Arg != c.arg {
			t.Errorf("%s: got %v, want an *InputError on %q", c.name, c.err, c.arg)
		}
	}
}

func TestErrTruncated(t *testing.T) {
	if !errors.Is(ErrTruncated, ErrAuth) {
		t.Error("ErrTruncated does not wrap ErrAuth")
	}
	if got := ErrTruncated.Error(); !strings.Contains(got, "truncated") || !strings.Contains(got, "final segment") {
		t.Errorf("ErrTruncated says %q", got)
	}
}
