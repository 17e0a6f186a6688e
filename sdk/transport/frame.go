package transport

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"

	"github.com/microhost/micro/sdk/errors"
)

// Stream frames: one type byte, a 4-byte big-endian length, then the payload.
const (
	frameData  byte = 0 // a message body
	frameError byte = 1 // a JSON error envelope; the stream ends after it

	frameHeaderLen = 5
)

// writeFrame writes one frame to w.
func writeFrame(w io.Writer, kind byte, payload []byte) error {
	var hdr [frameHeaderLen]byte
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	if len(payload) == 0 {
		return nil
	}
	_, err := w.Write(payload)
	return err
}

// readFrame reads one frame from r, refusing payloads over max bytes. An error frame
// is returned as its *errors.Error.
func readFrame(r io.Reader, max int64) ([]byte, error) {
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("transport: stream cut inside a frame header: %w", err)
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if int64(n) > max {
		return nil, errors.PayloadTooLarge("", "stream frame of %d bytes is over the %d byte limit; send smaller messages or raise the transport's max body size", n, max)
	}
	// A large declared length is only a claim until its bytes arrive.
	payload, err := readSized(io.LimitReader(r, int64(n)), int64(n), max, nil)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("transport: stream cut inside a %d byte frame: %w", n, err)
	}
	switch hdr[0] {
	case frameData:
		return payload, nil
	case frameError:
		var e errors.Error
		if err := json.Unmarshal(payload, &e); err != nil {
			return nil, errors.BadGateway("", "stream ended with an unreadable error frame: %v", err)
		}
		return nil, &e
	}
	return nil, errors.BadGateway("", "stream frame of unknown type %d", hdr[0])
}

// encodeErrorFrame renders err as the payload of an error frame.
func encodeErrorFrame(err error) []byte {
	b, mErr := json.Marshal(errors.FromError(err))
	if mErr != nil {
		return []byte(`{"code":500,"status":"Internal Server Error","detail":"unencodable error"}`)
	}
	return b
}
