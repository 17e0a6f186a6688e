package transport

import (
	"bytes"
	"fmt"
	"io"
)

// exactReadMax is the largest declared body length read into a buffer of
// that size up front. A larger Content-Length is only a claim until its bytes
// arrive, so such a body grows with what is read: a peer cannot make a
// process allocate megabytes by announcing them and sending nothing.
const exactReadMax = 64 << 10

// errTooLarge marks a body over the limit readSized was given.
var errTooLarge = fmt.Errorf("body over the size limit")

// readSized reads a body of declared length n (-1: unknown), at most max
// bytes, into buf when n fits it (buf may be nil).
func readSized(r io.Reader, n, max int64, buf func(int) []byte) ([]byte, error) {
	if n > max {
		return nil, errTooLarge
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
		return nil, errTooLarge
	}
	if n >= 0 && int64(b.Len()) != n {
		return nil, io.ErrUnexpectedEOF
	}
	return b.Bytes(), nil
}
