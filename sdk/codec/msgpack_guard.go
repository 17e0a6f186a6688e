package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The msgpack library sizes slices, maps and byte strings from the lengths an input
// declares and recurses once per nesting level, so five bytes declaring a 4-billion
// element array, or a megabyte of nested arrays, would kill the process (out of
// memory or out of stack: neither can be recovered). checkMsgpack walks the input
// first, without allocating, and refuses it unless every declared length is backed
// by actual bytes and the nesting stays shallow; the decoder then only ever sizes an
// allocation from a length that the input has proved.

const (
	// maxMsgpackDepth bounds nesting, the limit encoding/json applies to JSON.
	maxMsgpackDepth = 10000
	// maxExtNesting bounds how many extension payloads inside one another are vetted
	// (see msgpackScanner.checkExt); deeper ones are simply never read as maps.
	maxExtNesting = 16
	// maxPooledGuard caps the scanner state kept in the decoder pool.
	maxPooledGuard = 1024
)

var (
	errMsgpackEmpty     = errors.New("msgpack: empty input")
	errMsgpackTruncated = fmt.Errorf("msgpack: truncated input: %w", io.ErrUnexpectedEOF)
	errMsgpackDepth     = fmt.Errorf("msgpack: input nested deeper than %d levels", maxMsgpackDepth)
	errMsgpackExtAsMap  = errors.New("msgpack: extension value found where a map was expected")
)

// msgpackScanner checks inputs; its slices are reused from one input to the next.
type msgpackScanner struct {
	stack []int // values still to read in each open container
	traps []int // ascending offsets of extension payloads never to be read as a map
}

// small reports whether the scanner's state is small enough to keep in a pool.
func (s *msgpackScanner) small() bool {
	return cap(s.stack) <= maxPooledGuard && cap(s.traps) <= maxPooledGuard
}

// check reports whether data is exactly one well-formed msgpack value, and returns
// the traps for msgpackReader.
func (s *msgpackScanner) check(data []byte) ([]int, error) {
	s.stack, s.traps = s.stack[:0], s.traps[:0]
	if len(data) == 0 {
		return nil, errMsgpackEmpty
	}
	end, err := s.walk(data, 0, len(data), 1, 0)
	if err != nil {
		return nil, err
	}
	if end != len(data) {
		return nil, fmt.Errorf("msgpack: %d unexpected bytes after the value", len(data)-end)
	}
	return s.traps, nil
}

// walk checks want values from data[pos:limit] (every value up to limit when want is
// -1) and returns the offset after them.
func (s *msgpackScanner) walk(data []byte, pos, limit, want, extDepth int) (int, error) {
	base := len(s.stack)
	defer func() { s.stack = s.stack[:base] }()
	pending := want
	for {
		for pending == 0 {
			if len(s.stack) == base {
				return pos, nil
			}
			pending = s.stack[len(s.stack)-1]
			s.stack = s.stack[:len(s.stack)-1]
		}
		if pos >= limit {
			if pending < 0 && len(s.stack) == base {
				return pos, nil
			}
			return pos, errMsgpackTruncated
		}
		if pending > 0 {
			pending--
		}
		c := data[pos]
		pos++
		var children, size int // a container's values; a scalar's bytes after c
		switch {
		case c <= 0x7f || c >= 0xe0: // positive and negative fixint
			continue
		case c <= 0x8f: // fixmap
			children = 2 * int(c&0x0f)
		case c <= 0x9f: // fixarray
			children = int(c & 0x0f)
		case c <= 0xbf: // fixstr
			size = int(c & 0x1f)
		case c == 0xc0 || c == 0xc2 || c == 0xc3: // nil, false, true
			continue
		case c == 0xc1:
			return pos, fmt.Errorf("msgpack: invalid code 0xc1 at offset %d", pos-1)
		case c == 0xc4 || c == 0xd9: // bin8, str8
			n, next, err := readLength(data, pos, limit, 1)
			if err != nil {
				return pos, err
			}
			pos, size = next, n
		case c == 0xc5 || c == 0xda: // bin16, str16
			n, next, err := readLength(data, pos, limit, 2)
			if err != nil {
				return pos, err
			}
			pos, size = next, n
		case c == 0xc6 || c == 0xdb: // bin32, str32
			n, next, err := readLength(data, pos, limit, 4)
			if err != nil {
				return pos, err
			}
			pos, size = next, n
		case c >= 0xc7 && c <= 0xc9: // ext8, ext16, ext32: length, type, payload
			n, next, err := readLength(data, pos, limit, 1<<(c-0xc7))
			if err != nil {
				return pos, err
			}
			if pos, err = s.checkExt(data, next, limit, n, extDepth); err != nil {
				return pos, err
			}
			continue
		case c >= 0xd4 && c <= 0xd8: // fixext 1, 2, 4, 8, 16: type, payload
			var err error
			if pos, err = s.checkExt(data, pos, limit, 1<<(c-0xd4), extDepth); err != nil {
				return pos, err
			}
			continue
		case c == 0xca: // float32
			size = 4
		case c == 0xcb: // float64
			size = 8
		case c >= 0xcc && c <= 0xd3: // uint8..uint64, int8..int64
			size = 1 << ((c - 0xcc) & 3)
		case c == 0xdc || c == 0xdd: // array16, array32
			n, next, err := readLength(data, pos, limit, 2<<(c-0xdc))
			if err != nil {
				return pos, err
			}
			pos, children = next, n
		default: // 0xde, 0xdf: map16, map32
			n, next, err := readLength(data, pos, limit, 2<<(c-0xde))
			if err != nil {
				return pos, err
			}
			pos, children = next, 2*n
		}
		if size > 0 {
			if size > limit-pos {
				return pos, errMsgpackTruncated
			}
			pos += size
			continue
		}
		if children == 0 {
			continue
		}
		// Every value takes at least one byte: a longer claim cannot be honest.
		if children > limit-pos {
			return pos, errMsgpackTruncated
		}
		if len(s.stack) >= maxMsgpackDepth {
			return pos, errMsgpackDepth
		}
		s.stack = append(s.stack, pending)
		pending = children
	}
}

// checkExt checks an extension whose type byte is at data[pos] and whose payload is
// the n bytes after it, and returns the offset after the payload.
//
// The payload is opaque, except that the library, when it expects a map and finds an
// extension, skips the extension header and reads the payload as a map (or nil) and
// whatever follows. So a payload starting with a map or nil code must itself be a
// run of well-formed values; if it is not, its offset becomes a trap: msgpackReader
// refuses to read it that way, which fails the decode instead of trusting it.
func (s *msgpackScanner) checkExt(data []byte, pos, limit, n, extDepth int) (int, error) {
	start := pos + 1
	if start > limit || n > limit-start {
		return pos, errMsgpackTruncated
	}
	end := start + n
	if n == 0 || !startsMapOrNil(data[start]) {
		return end, nil
	}
	mark := len(s.traps)
	if extDepth < maxExtNesting {
		if _, err := s.walk(data, start, end, -1, extDepth+1); err == nil {
			return end, nil
		}
	}
	s.traps = append(s.traps[:mark], start)
	return end, nil
}

// startsMapOrNil reports whether c is a code the library accepts as a map header.
func startsMapOrNil(c byte) bool {
	return (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf || c == 0xc0
}

// readLength reads the width-byte big-endian length at data[pos:] and returns it and
// the offset after it.
func readLength(data []byte, pos, limit, width int) (int, int, error) {
	if width > limit-pos {
		return 0, pos, errMsgpackTruncated
	}
	b := data[pos : pos+width]
	switch width {
	case 1:
		return int(b[0]), pos + 1, nil
	case 2:
		return int(binary.BigEndian.Uint16(b)), pos + 2, nil
	default:
		return int(binary.BigEndian.Uint32(b)), pos + 4, nil
	}
}

// msgpackReader is the decoder's input: a byte reader over checked data that fails
// a byte-by-byte read at a trap, the one way the library reads an extension payload
// as a map. Payloads read as extensions (times, for example) are read in bulk.
type msgpackReader struct {
	data   []byte
	pos    int
	traps  []int
	unread bool // whether the last operation was a ReadByte that can be undone
}

// reset points r at data with its traps.
func (r *msgpackReader) reset(data []byte, traps []int) {
	r.data, r.pos, r.traps, r.unread = data, 0, traps, false
}

// Read implements io.Reader.
func (r *msgpackReader) Read(p []byte) (int, error) {
	r.unread = false
	if r.pos >= len(r.data) {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := copy(p, r.data[r.pos:])
	r.pos += n
	return n, nil
}

// ReadByte implements io.ByteReader.
func (r *msgpackReader) ReadByte() (byte, error) {
	r.unread = false
	if r.pos >= len(r.data) {
		return 0, io.EOF
	}
	for len(r.traps) > 0 && r.traps[0] < r.pos {
		r.traps = r.traps[1:]
	}
	if len(r.traps) > 0 && r.traps[0] == r.pos {
		return 0, errMsgpackExtAsMap
	}
	b := r.data[r.pos]
	r.pos++
	r.unread = true
	return b, nil
}

// UnreadByte implements io.ByteScanner.
func (r *msgpackReader) UnreadByte() error {
	if !r.unread {
		return errors.New("msgpack: UnreadByte without ReadByte")
	}
	r.unread = false
	r.pos--
	return nil
}
