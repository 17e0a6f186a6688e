package main

import (
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// heldNaks holds a JetStream subscription's naks while it leaves. Until its
// consume loop has drained, the server still holds the loop's pull request,
// and a message nacked then may be redelivered straight back to it, arrive
// after the loop is gone and wait out the ack wait. Sent once the drain is
// over, when the server has dropped the loop's interest, a nak reaches another
// member of a queue group at once.
type heldNaks struct {
	mu   sync.Mutex
	held bool
	msgs []jetstream.Msg
}

// nak naks m now, or once released while the naks are held.
func (h *heldNaks) nak(m jetstream.Msg) error {
	h.mu.Lock()
	if h.held {
		h.msgs = append(h.msgs, m)
		h.mu.Unlock()
		return nil
	}
	h.mu.Unlock()
	return m.Nak()
}

// hold holds the naks from now until release.
func (h *heldNaks) hold() {
	h.mu.Lock()
	h.held = true
	h.mu.Unlock()
}

// release sends the held naks, and those to come at once.
func (h *heldNaks) release() {
	h.mu.Lock()
	msgs := h.msgs
	h.held, h.msgs = false, nil
	h.mu.Unlock()
	for _, m := range msgs {
		_ = m.Nak() // a nak that cannot go leaves the message to the ack wait
	}
}
