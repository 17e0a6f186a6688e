package main

import (
	"encoding/binary"
	stderrors "errors"
	"fmt"
	"io"
	"math"
	"net/http"

	"github.com/microhost/micro/sdk/errors"
)

// Every frame is one binary WebSocket message:
//
//	type     1 byte   one of the frame* constants
//	id       8 bytes  big-endian; the call or stream the frame belongs to
//	hlen     4 bytes  big-endian; length of the header block
//	plen     4 bytes  big-endian; length of the payload
//	header   hlen bytes: pairs of uvarint length + name, uvarint length + value
//	payload  plen bytes: a body, a JSON error envelope or a window increment
//
// Ids are chosen by the caller, one counter per WebSocket connection shared by
// calls and streams, so a cancel frame names either.
const (
	frameRequest   byte = 1  // caller → server: a call; header and body
	frameResponse  byte = 2  // server → caller: the call's answer; header and body
	frameOpen      byte = 3  // caller → server: opens a stream; header
	frameOpened    byte = 4  // server → caller: the stream's handler runs
	frameData      byte = 5  // both ways: one stream message; payload is the body
	frameCloseSend byte = 6  // caller → server: no more stream messages follow
	frameEnd       byte = 7  // server → caller: the handler returned nil
	frameError     byte = 8  // server → caller: the stream failed; payload is the envelope
	frameRefused   byte = 9  // server → caller: call or stream not run (draining); payload is the envelope
	frameCancel    byte = 10 // caller → server: the caller gave up on a call or closed its stream
	frameWindow    byte = 11 // both ways: payload is a uint32 of stream bytes the peer may send more
)

// frameHeadLen is the fixed part before the header block; it is also what one
// stream message costs on top of its body in flow control.
const frameHeadLen = 17

// Limits besides the configurable body size.
const (
	maxHeaderBytes  = 1 << 20  // a header block, as net/http's default MaxHeaderBytes
	maxControlBytes = 64 << 10 // the payload of frames that carry no body
)

// frame is one decoded frame.
type frame struct {
	typ     byte
	id      uint64
	header  map[string]string // never nil for request, response and open
	payload []byte
}

// hasBody reports whether payload of a frame of type typ is a message body,
// bounded by max_body_bytes rather than maxControlBytes.
func hasBody(typ byte) bool {
	return typ == frameRequest || typ == frameResponse || typ == frameData
}

// oversizeError is a frame whose header block or body is over the limit. The
// frame was read and dropped, so the connection can carry on.
type oversizeError struct {
	what  string // "header block" or "body"
	size  uint32
	limit int64
}

func (e *oversizeError) Error() string {
	return fmt.Sprintf("%s of %d bytes is over the %d byte limit", e.what, e.size, e.limit)
}

// errProtocol marks a peer that does not speak this protocol; the connection is
// closed.
var errProtocol = stderrors.New("transport ws: protocol violation")

// appendFrame appends f's encoding, leaving out the payload unless
// inlinePayload (large bodies are written from their own slice, not copied). A
// frame that cannot be encoded is an *errors.Error.
func appendFrame(buf []byte, f *frame, inlinePayload bool) ([]byte, error) {
	hlen := 0
	for k, v := range f.header {
		hlen += uvarintLen(len(k)) + len(k) + uvarintLen(len(v)) + len(v)
	}
	if hlen > maxHeaderBytes {
		return nil, errors.New("", http.StatusRequestHeaderFieldsTooLarge, "transport ws: header block of %d bytes is over the %d byte limit", hlen, maxHeaderBytes)
	}
	if len(f.payload) > math.MaxUint32 {
		return nil, errors.PayloadTooLarge("", "transport ws: body of %d bytes is over the 4 GiB a frame carries", len(f.payload))
	}
	buf = append(buf, f.typ)
	buf = binary.BigEndian.AppendUint64(buf, f.id)
	buf = binary.BigEndian.AppendUint32(buf, uint32(hlen))
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(f.payload)))
	for k, v := range f.header {
		buf = binary.AppendUvarint(buf, uint64(len(k)))
		buf = append(buf, k...)
		buf = binary.AppendUvarint(buf, uint64(len(v)))
		buf = append(buf, v...)
	}
	if inlinePayload {
		buf = append(buf, f.payload...)
	}
	return buf, nil
}

func uvarintLen(n int) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}

// readFrame decodes one WebSocket message from r. A header block over
// maxHeaderBytes or a body over maxBody is skipped and reported as an
// *oversizeError together with the frame's type and id; errProtocol means the
// message was not a frame; any other error comes from the connection.
func readFrame(r io.Reader, maxBody int64) (*frame, error) {
	var head [frameHeadLen]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		if stderrors.Is(err, io.EOF) || stderrors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: a message of fewer than %d bytes", errProtocol, frameHeadLen)
		}
		return nil, err
	}
	f := &frame{typ: head[0], id: binary.BigEndian.Uint64(head[1:9])}
	hlen := binary.BigEndian.Uint32(head[9:13])
	plen := binary.BigEndian.Uint32(head[13:17])
	if f.typ < frameRequest || f.typ > frameWindow {
		return nil, fmt.Errorf("%w: unknown frame type %d", errProtocol, f.typ)
	}

	var tooBig *oversizeError
	switch {
	case hlen > maxHeaderBytes:
		tooBig = &oversizeError{what: "header block", size: hlen, limit: maxHeaderBytes}
	case hasBody(f.typ) && int64(plen) > maxBody:
		tooBig = &oversizeError{what: "body", size: plen, limit: maxBody}
	case !hasBody(f.typ) && plen > maxControlBytes:
		return nil, fmt.Errorf("%w: frame type %d with a payload of %d bytes", errProtocol, f.typ, plen)
	}
	if tooBig != nil {
		if err := skip(r, int64(hlen)+int64(plen)); err != nil {
			return nil, err
		}
		return f, tooBig
	}

	if hlen > 0 || f.typ == frameRequest || f.typ == frameResponse || f.typ == frameOpen {
		block := make([]byte, hlen)
		if err := readFull(r, block); err != nil {
			return nil, err
		}
		h, err := decodeHeader(block)
		if err != nil {
			return nil, err
		}
		f.header = h
	}
	if plen > 0 {
		f.payload = make([]byte, plen)
		if err := readFull(r, f.payload); err != nil {
			return nil, err
		}
	}
	if err := expectEnd(r); err != nil {
		return nil, err
	}
	return f, nil
}

// decodeHeader parses a header block.
func decodeHeader(b []byte) (map[string]string, error) {
	h := make(map[string]string, 8)
	for len(b) > 0 {
		k, rest, err := cutString(b)
		if err != nil {
			return nil, err
		}
		v, rest, err := cutString(rest)
		if err != nil {
			return nil, err
		}
		h[k] = v
		b = rest
	}
	return h, nil
}

// cutString reads one length-prefixed string off the front of b.
func cutString(b []byte) (string, []byte, error) {
	n, l := binary.Uvarint(b)
	if l <= 0 || n > uint64(len(b)-l) {
		return "", nil, fmt.Errorf("%w: malformed header block", errProtocol)
	}
	end := l + int(n)
	return string(b[l:end]), b[end:], nil
}

// readFull reads len(b) bytes; a message that ends early is a protocol error.
func readFull(r io.Reader, b []byte) error {
	if _, err := io.ReadFull(r, b); err != nil {
		if stderrors.Is(err, io.EOF) || stderrors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: a frame shorter than its lengths say", errProtocol)
		}
		return err
	}
	return nil
}

// skip discards n bytes of a frame, then checks the message ends there.
func skip(r io.Reader, n int64) error {
	got, err := io.CopyN(io.Discard, r, n)
	if err != nil {
		if stderrors.Is(err, io.EOF) && got < n {
			return fmt.Errorf("%w: a frame shorter than its lengths say", errProtocol)
		}
		return err
	}
	return expectEnd(r)
}

// expectEnd checks the message holds nothing after the frame.
func expectEnd(r io.Reader) error {
	var one [1]byte
	n, err := r.Read(one[:])
	for n == 0 && err == nil {
		n, err = r.Read(one[:])
	}
	if n > 0 {
		return fmt.Errorf("%w: bytes after the end of a frame", errProtocol)
	}
	if stderrors.Is(err, io.EOF) {
		return nil
	}
	return err
}
