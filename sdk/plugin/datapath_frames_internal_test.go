package plugin

import (
	"encoding/binary"
	"runtime"
	"testing"
)

// TestFrameDecoderHeaderCountIsNoAllocationBomb decodes a message that claims
// as many header entries as its payload can hold, all of them empty and so one
// map entry in the end: decoding must cost about the payload, not a map sized
// for every claimed entry.
func TestFrameDecoderHeaderCountIsNoAllocationBomb(t *testing.T) {
	n := uint64(dataFrameLimit/2 - 8)
	p := binary.AppendUvarint(nil, n)
	p = append(p, make([]byte, 2*n)...)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := frameDecoder{p: p}
	m, err := d.message()
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("decoding %d empty header entries: %v", n, err)
	}
	if len(m.Header) != 1 {
		t.Fatalf("header has %d entries, want 1", len(m.Header))
	}
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(2*len(p)); got > limit {
		t.Fatalf("decoding a %d byte frame allocated %d bytes, want at most %d", len(p), got, limit)
	}
}
