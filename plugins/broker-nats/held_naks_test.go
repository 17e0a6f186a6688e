package main

import (
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// countedMsg is a JetStream message that counts its naks; nothing else of it
// is used.
type countedMsg struct {
	jetstream.Msg
	naks atomic.Int32
}

func (m *countedMsg) Nak() error {
	m.naks.Add(1)
	return nil
}

// TestHeldNaksGoOnRelease checks naks made while a subscription leaves wait
// for the release, each then sent once, and those made after go at once.
func TestHeldNaksGoOnRelease(t *testing.T) {
	var h heldNaks
	early := &countedMsg{}
	if err := h.nak(early); err != nil || early.naks.Load() != 1 {
		t.Fatalf("a nak before hold: %v, sent %d times; want sent at once", err, early.naks.Load())
	}
	h.hold()
	held := []*countedMsg{{}, {}}
	for _, m := range held {
		if err := h.nak(m); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range held {
		if n := m.naks.Load(); n != 0 {
			t.Fatalf("held nak %d was sent %d times before the release", i, n)
		}
	}
	h.release()
	for i, m := range held {
		if n := m.naks.Load(); n != 1 {
			t.Fatalf("held nak %d was sent %d times after the release, want once", i, n)
		}
	}
	late := &countedMsg{}
	if err := h.nak(late); err != nil || late.naks.Load() != 1 {
		t.Fatalf("a nak after the release: %v, sent %d times; want sent at once", err, late.naks.Load())
	}
	h.release() // a second release sends nothing again
	if n := held[0].naks.Load(); n != 1 {
		t.Fatalf("a second release sent a held nak again (%d times)", n)
	}
}
