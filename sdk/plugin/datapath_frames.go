package plugin

import (
	"encoding/binary"
	stderrors "errors"

	"github.com/microhost/micro/sdk/transport"
)

// The data path's frames. Every frame is a 4-byte big-endian length followed by
// that many bytes of payload: a type byte, the uvarint id of the call or request
// the frame belongs to, then what the type carries. A message is its header count
// and each key and value as uvarint length and bytes, then the body, which runs to
// the end of the payload. Nothing is protobuf: the hot path pays for no maps of
// messages, no reflection and no per-field tags.
//
//	hello    plugin -> host  id: the connection's number; version uvarint
//	call     host -> plugin  id; timeout µs uvarint (0: none); address; message
//	cancel   host -> plugin  id: the caller gave up
//	result   plugin -> host  id; status byte; message (ok) or JSON envelope
//	request  plugin -> host  id; listener uvarint; message
//	response host -> plugin  id; message
//	giveup   plugin -> host  id: the remote caller of request id gave up
//	                         (version 2 on)
const (
	frameHello byte = iota + 1
	frameCall
	frameCancel
	frameResult
	frameRequest
	frameResponse
	frameGiveUp
)

// The status byte of a result frame.
const (
	resultOK      byte = iota // a message follows
	resultError               // the call failed: its JSON envelope follows
	resultNotSent             // the call failed before the request left (a 503)
)

// The frame protocol versions this SDK speaks. Version 2 adds the giveup
// frame, so a host handler's context ends when the remote caller gives up, as
// with a built-in transport; a peer that knows only version 1 takes an unknown
// frame for a broken connection, so a plugin sends giveup only on a version 2
// connection.
const (
	dataPathMinVersion = 1
	dataPathVersion    = 2
)

// dataPathOffer is what a host offers in DataPathRequest: every version it
// speaks, newest first.
func dataPathOffer() []uint32 { return []uint32{dataPathVersion, dataPathMinVersion} }

// chooseDataPathVersion is the newest version in offered this SDK speaks, 0
// when there is none.
func chooseDataPathVersion(offered []uint32) uint32 {
	var best uint32
	for _, v := range offered {
		if v >= dataPathMinVersion && v <= dataPathVersion && v > best {
			best = v
		}
	}
	return best
}

// frameLenSize is the size of a frame's length prefix.
const frameLenSize = 4

// dataFrameLimit is the largest payload either side sends, the same as the gRPC
// channel's wireLimit: a sender answers a larger message with an error envelope,
// and a receiver treats a larger frame as a broken peer.
const dataFrameLimit = wireLimit

// headerSizeHint is the most header entries a decoded message's map is sized
// for up front; a larger header grows it as its distinct keys come.
const headerSizeHint = 64

// errBadFrame is a frame that does not decode: the peer is broken, and the
// connection is closed.
var errBadFrame = stderrors.New("malformed data path frame")

// uvarintLen is the number of bytes binary.AppendUvarint writes for v.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// messageSize is the encoded size of m.
func messageSize(m *transport.Message) int {
	n := uvarintLen(uint64(len(m.Header))) + len(m.Body)
	for k, v := range m.Header {
		n += uvarintLen(uint64(len(k))) + len(k) + uvarintLen(uint64(len(v))) + len(v)
	}
	return n
}

// frameSize is the payload size of a frame of type typ and id whose fields after
// the id take rest bytes.
func frameSize(id uint64, rest int) int { return 1 + uvarintLen(id) + rest }

// beginFrame appends a frame's length placeholder, type and id to b; endFrame
// fills the length in.
func beginFrame(b []byte, typ byte, id uint64) []byte {
	b = append(b, 0, 0, 0, 0, typ)
	return binary.AppendUvarint(b, id)
}

// endFrame writes the length of the frame that starts at b[start:].
func endFrame(b []byte, start int) []byte {
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-frameLenSize))
	return b
}

// appendString appends s as its uvarint length and bytes.
func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendMessage appends m; it must be the last field of its frame.
func appendMessage(b []byte, m *transport.Message) []byte {
	b = binary.AppendUvarint(b, uint64(len(m.Header)))
	for k, v := range m.Header {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	return append(b, m.Body...)
}

// frameDecoder reads the fields of one frame's payload in order.
type frameDecoder struct {
	p   []byte
	bad bool
}

// byte reads one byte.
func (d *frameDecoder) byte() byte {
	if len(d.p) == 0 {
		d.bad = true
		return 0
	}
	c := d.p[0]
	d.p = d.p[1:]
	return c
}

// uvarint reads one uvarint.
func (d *frameDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.p = d.p[n:]
	return v
}

// bytes reads a length-prefixed field, aliasing the payload.
func (d *frameDecoder) bytes() []byte {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.p)) {
		d.bad = true
		return nil
	}
	b := d.p[:n:n]
	d.p = d.p[n:]
	return b
}

// string reads a length-prefixed field as a string.
func (d *frameDecoder) string() string { return string(d.bytes()) }

// rest returns what is left of the payload.
func (d *frameDecoder) rest() []byte {
	b := d.p
	d.p = nil
	return b
}

// message reads a message. The header's keys and values share one string, one
// allocation for all of them; the body aliases the payload, which the frame
// reader allocates afresh for every frame.
func (d *frameDecoder) message() (*transport.Message, error) {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.p))/2 {
		return nil, errBadFrame
	}
	// First pass: find where the header ends.
	start := d.p
	for i := uint64(0); i < 2*n; i++ {
		d.bytes()
	}
	if d.bad {
		return nil, errBadFrame
	}
	text := string(start[:len(start)-len(d.p)])
	body := d.rest()
	// The count is the peer's word: a map sized for it would let a frame of
	// empty entries, all one key, allocate far more than the frame holds.
	h := make(map[string]string, min(n, headerSizeHint))
	for i := uint64(0); i < n; i++ {
		k := cutField(&text)
		h[k] = cutField(&text)
	}
	if len(body) == 0 {
		body = nil
	}
	return &transport.Message{Header: h, Body: body}, nil
}

// cutField takes one length-prefixed field off the front of text, which the
// first pass of message already checked.
func cutField(text *string) string {
	s := *text
	var n, shift uint64
	i := 0
	for ; ; i++ {
		c := s[i]
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
		shift += 7
	}
	i++
	v := s[i : i+int(n)]
	*text = s[i+int(n):]
	return v
}
