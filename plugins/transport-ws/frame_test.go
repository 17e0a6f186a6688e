package main

import (
	"bytes"
	"context"
	stderrors "errors"
	"maps"
	"testing"

	"github.com/coder/websocket"
)

// encode renders f as one WebSocket message's bytes.
func encode(t testing.TB, f *frame) []byte {
	b, err := appendFrame(nil, f, true)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFrameRoundTrip(t *testing.T) {
	for _, f := range []*frame{
		{typ: frameRequest, id: 1, header: map[string]string{"Micro-Endpoint": "Greeter.Hello", "Authorization": "Bearer " + string(bytes.Repeat([]byte("t"), 300)), "Empty": ""}, payload: []byte(`{"name":"世界"}`)},
		{typ: frameResponse, id: 1<<64 - 1, header: map[string]string{}},
		{typ: frameOpen, id: 7, header: map[string]string{"Micro-Endpoint": "S.Chat"}},
		{typ: frameData, id: 7, payload: []byte{0, 1, 2}},
		{typ: frameWindow, id: 7, payload: []byte{0, 0, 1, 0}},
		{typ: frameCancel, id: 9},
	} {
		got, err := readFrame(bytes.NewReader(encode(t, f)), 1<<20)
		if err != nil {
			t.Fatalf("type %d: %v", f.typ, err)
		}
		if got.typ != f.typ || got.id != f.id || !bytes.Equal(got.payload, f.payload) || !maps.Equal(got.header, f.header) {
			t.Errorf("type %d came back as %+v", f.typ, got)
		}
		if (f.typ == frameRequest || f.typ == frameResponse || f.typ == frameOpen) && got.header == nil {
			t.Errorf("type %d: nil header map", f.typ)
		}
	}
}

func TestFrameLimits(t *testing.T) {
	big := encode(t, &frame{typ: frameRequest, id: 3, header: map[string]string{"A": "b"}, payload: make([]byte, 101)})
	f, err := readFrame(bytes.NewReader(big), 100)
	var over *oversizeError
	if !stderrors.As(err, &over) || f == nil || f.id != 3 || f.typ != frameRequest {
		t.Errorf("a 101 byte body over a 100 byte limit: %+v, %v; want the frame's id and an *oversizeError", f, err)
	}
	for name, msg := range map[string][]byte{
		"short":          {frameData, 0, 0},
		"unknown type":   append([]byte{42}, make([]byte, 16)...),
		"trailing bytes": append(encode(t, &frame{typ: frameCancel, id: 1}), 0),
		"cut payload":    encode(t, &frame{typ: frameData, id: 1, payload: []byte("abc")})[:frameHeadLen+1],
		"bad header":     append(encode(t, &frame{typ: frameOpen, id: 1, header: map[string]string{"K": "v"}})[:frameHeadLen], 9, 'K'),
	} {
		if _, err := readFrame(bytes.NewReader(msg), 100); !stderrors.Is(err, errProtocol) {
			t.Errorf("%s: %v, want errProtocol", name, err)
		}
	}
}

// FuzzReadFrame checks no message makes readFrame panic or return a frame that
// does not encode back to the same message.
func FuzzReadFrame(f *testing.F) {
	f.Add(encode(f, &frame{typ: frameRequest, id: 1, header: map[string]string{"Micro-Endpoint": "A.B"}, payload: []byte("hi")}))
	f.Add(encode(f, &frame{typ: frameWindow, id: 2, payload: []byte{0, 1, 0, 0}}))
	f.Add([]byte{frameData, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, msg []byte) {
		fr, err := readFrame(bytes.NewReader(msg), 1<<16)
		if err != nil {
			return
		}
		back, err := readFrame(bytes.NewReader(encode(t, fr)), 1<<16)
		if err != nil || back.typ != fr.typ || back.id != fr.id || !bytes.Equal(back.payload, fr.payload) || !maps.Equal(back.header, fr.header) {
			t.Errorf("%x decodes to %+v, which re-encodes to %+v (%v)", msg, fr, back, err)
		}
	})
}

// TestRefusesWrongSubprotocol checks the listener closes a WebSocket opened
// without the frame format's subprotocol instead of misreading it.
func TestRefusesWrongSubprotocol(t *testing.T) {
	ln := serve(t, defaultOptions(), handlerFunc{})
	ws, _, err := websocket.Dial(ctxFor(t), "ws://"+ln.Addr()+Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_, _, err = ws.Read(context.Background())
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Errorf("read on a WebSocket without subprotocol %s = %v, want a policy-violation close", subprotocol, err)
	}
}
