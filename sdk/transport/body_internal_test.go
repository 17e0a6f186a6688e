package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadBody(t *testing.T) {
	const max = 4 << 20
	big := strings.Repeat("x", 100<<10)
	cut := func(s string) io.Reader {
		return io.MultiReader(strings.NewReader(s), iotest.ErrReader(io.ErrUnexpectedEOF))
	}
	for _, tc := range []struct {
		name string
		r    io.Reader
		n    int64
		want string
		err  error
	}{
		{"declared, small", strings.NewReader("hello"), 5, "hello", nil},
		{"declared, large", strings.NewReader(big), int64(len(big)), big, nil},
		{"unknown length", strings.NewReader(big), -1, big, nil},
		{"declared over the limit", strings.NewReader("x"), max + 1, "", ErrBodyTooLarge},
		{"unknown length over the limit", strings.NewReader(strings.Repeat("x", max+1)), -1, "", ErrBodyTooLarge},
		{"small, cut short", cut("hel"), 5, "", io.ErrUnexpectedEOF},
		{"large, cut short", cut("hel"), 3 << 20, "", io.ErrUnexpectedEOF},
		{"large, shorter than declared", strings.NewReader("hello"), 3 << 20, "", io.ErrUnexpectedEOF},
	} {
		got, err := ReadBody(tc.r, tc.n, max)
		if !errors.Is(err, tc.err) || (err == nil && string(got) != tc.want) {
			t.Errorf("%s: %d bytes, %v; want %d bytes, %v", tc.name, len(got), err, len(tc.want), tc.err)
		}
	}
}

// TestReadSizedDoesNotTrustALargeDeclaredLength checks announcing a large body
// and sending a byte costs no allocation of the announced size.
func TestReadSizedDoesNotTrustALargeDeclaredLength(t *testing.T) {
	const declared = 64 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readSized(io.MultiReader(bytes.NewReader([]byte("{")), iotest.ErrReader(io.ErrUnexpectedEOF)), declared, declared, nil)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err %v, want the cut-short body's", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n >= declared/4 {
		t.Fatalf("a 1-byte body that claimed %d bytes allocated %d bytes", declared, n)
	}
}

// TestReadFrameDoesNotTrustALargeDeclaredLength checks a stream frame header
// announcing a large payload, followed by a byte, costs no allocation of the
// announced size.
func TestReadFrameDoesNotTrustALargeDeclaredLength(t *testing.T) {
	const declared = 64 << 20
	hdr := []byte{frameData, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[1:], declared)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readFrame(io.MultiReader(bytes.NewReader(hdr), bytes.NewReader([]byte("{"))), declared)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err %v, want the cut-short frame's", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n >= declared/4 {
		t.Fatalf("a 1-byte frame that claimed %d bytes allocated %d bytes", declared, n)
	}
	big := bytes.Repeat([]byte("x"), 100<<10)
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(big)))
	got, err := readFrame(io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(big), strings.NewReader("next")), declared)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("a whole %d byte frame: %d bytes, %v", len(big), len(got), err)
	}
}
