package transport

import (
	"bytes"
	"errors"
	"io"
)

// exactReadMax is the largest declared body length read into a buffer of
// that size up front. A larger Content-Length is only a claim until its bytes
// arrive, so such a body grows with what is read: a peer cannot make a
// process allocate megabytes by announcing them and sending nothing.
const exactReadMax = 64 << 10

// ErrBodyTooLarge is ReadBody's error for a body over its size limit.
var ErrBodyTooLarge = errors.New("body over the size limit")

// ReadBody reads a body of declared length n (-1: unknown) holding at most max
// bytes. Only a declared length up to 64 KiB is allocated up front; a body
// over max is ErrBodyTooLarge, one shorter than declared io.ErrUnexpectedEOF.
func ReadBody(r io.Reader, n, max int64) ([]byte, error) {
	return readSized(r, n, max, nil)
}

// readSized is ReadBody reading a body that fits exactReadMax into buf(n)
// (buf may be nil).
func readSized(r io.Reader, n, max int64, buf func(int) []byte) ([]byte, error) {
	if n > max {
		return nil, ErrBodyTooLarge
	}
	if n >= 0 && n <= exactReadMax {
		var b []byte
		if buf != nil {
			b = buf(int(n))
		} else {
			b = make([]byte, n)
		}
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(r, max+1)); err != nil {
		return nil, err
	}
	if int64(b.Len()) > max {
		return nil, ErrBodyTooLarge
	}
	if n >= 0 && int64(b.Len()) != n {
		return nil, io.ErrUnexpectedEOF
	}
	return b.Bytes(), nil
}
