package vault

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKWVectors checks the test vectors of RFC 3394 §4.
func TestKWVectors(t *testing.T) {
	const (
		kek128 = "000102030405060708090A0B0C0D0E0F"
		kek192 = "000102030405060708090A0B0C0D0E0F1011121314151617"
		kek256 = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
		data16 = "00112233445566778899AABBCCDDEEFF"
		data24 = "00112233445566778899AABBCCDDEEFF0001020304050607"
		data32 = "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F"
	)
	for _, tc := range []struct{ name, kek, data, want string }{
		{"4.1", kek128, data16, "1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5"},
		{"4.2", kek192, data16, "96778B25AE6CA435 F92B5B97C050AED2 468AB8A17AD84E5D"},
		{"4.3", kek256, data16, "64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7"},
		{"4.4", kek192, data24, "031D33264E15D332 68F24EC260743EDC E1C6C7DDEE725A93 6BA814915C6762D2"},
		{"4.5", kek256, data24, "A8F9BC1612C68B3F F6E6F4FBE30E71E4 769C8B80A32CB895 8CD5D17D6B254DA1"},
		{"4.6", kek256, data32, "28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kek, data, want := unhex(t, tc.kek), unhex(t, tc.data), unhex(t, tc.want)
			got, err := kwWrap(kek, data)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("wrap = %X, %v; want %X", got, err, want)
			}
			back, err := kwUnwrap(kek, want)
			if err != nil || !bytes.Equal(back, data) {
				t.Fatalf("unwrap = %X, %v; want %X", back, err, data)
			}
		})
	}
}

// TestKWPVectors checks the test vectors of RFC 5649 §6.
func TestKWPVectors(t *testing.T) {
	kek := unhex(t, "5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8")
	for _, tc := range []struct{ name, data, want string }{
		{"20 bytes", "c37b7e6492584340 bed1220780894115 5068f738", "138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a"},
		{"7 bytes", "466f7250617369", "afbeb0f07dfbf541 9200f2ccb50bb24f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, want := unhex(t, tc.data), unhex(t, tc.want)
			got, err := kwpWrap(kek, data)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("wrap = %x, %v; want %x", got, err, want)
			}
			back, err := kwpUnwrap(kek, want)
			if err != nil || !bytes.Equal(back, data) {
				t.Fatalf("unwrap = %x, %v; want %x", back, err, data)
			}
		})
	}
}

func TestKWRejects(t *testing.T) {
	kek := make([]byte, 32)
	rand.Read(kek)
	other := make([]byte, 32)
	rand.Read(other)
	for _, n := range []int{0, 1, 8, 15, 17, 33} {
		if _, err := kwWrap(kek, make([]byte, n)); !errors.Is(err, errKWInput) {
			t.Errorf("kwWrap of %d bytes: %v, want errKWInput", n, err)
		}
	}
	if _, err := kwpWrap(kek, nil); !errors.Is(err, errKWInput) {
		t.Errorf("kwpWrap of nothing: %v", err)
	}
	if _, err := kwWrap(make([]byte, 20), make([]byte, 16)); err == nil {
		t.Error("kwWrap with a 20-byte KEK succeeded")
	}
	for _, n := range []int{1, 7, 8, 9, 16, 31, 32, 190} {
		p := make([]byte, n)
		rand.Read(p)
		type algo struct {
			name   string
			wrap   func(k, p []byte) ([]byte, error)
			unwrap func(k, c []byte) ([]byte, error)
		}
		algos := []algo{{"KWP", kwpWrap, kwpUnwrap}}
		if n >= 16 && n%8 == 0 {
			algos = append(algos, algo{"KW", kwWrap, kwUnwrap})
		}
		for _, a := range algos {
			c, err := a.wrap(kek, p)
			if err != nil {
				t.Fatalf("%s wrap of %d bytes: %v", a.name, n, err)
			}
			if got, err := a.unwrap(kek, c); err != nil || !bytes.Equal(got, p) {
				t.Fatalf("%s round trip of %d bytes: %v", a.name, n, err)
			}
			if _, err := a.unwrap(other, c); err == nil {
				t.Errorf("%s: %d bytes unwrapped under another key", a.name, n)
			}
			for i := range c {
				bad := bytes.Clone(c)
				bad[i] ^= 0x01
				if _, err := a.unwrap(kek, bad); err == nil {
					t.Errorf("%s: %d bytes with byte %d flipped unwrapped", a.name, n, i)
				}
			}
			for _, bad := range [][]byte{c[:len(c)-8], c[:len(c)-1], append(bytes.Clone(c), 0), nil} {
				if _, err := a.unwrap(kek, bad); err == nil {
					t.Errorf("%s: a %d-byte variant of a %d-byte wrap unwrapped", a.name, len(bad), len(c))
				}
			}
		}
	}
}
