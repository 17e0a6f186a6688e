package main

import (
	"encoding/binary"
	"sync"
)

// streamWindow is how many bytes of stream messages (each counted with
// frameHeadLen on top of its body) one side may send before the other has read
// them. Credit comes back in window frames as the receiver reads, so a slow
// reader slows its sender down instead of stalling the shared connection or
// growing a queue without bound.
const streamWindow = 1 << 20

// cost is what one stream message counts against the window.
func cost(body []byte) int64 { return int64(len(body)) + frameHeadLen }

// flow is the part of a stream both sides share: the queue of received
// messages with the credit it returns to the peer, and the credit for sending.
// The connection's read loop pushes; the application's Recv pops.
type flow struct {
	id   uint64
	link *link

	mu       sync.Mutex
	msgs     [][]byte
	queued   int64         // cost of msgs
	unacked  int64         // cost read by the application, not yet granted back
	recvEnd  error         // once set, Recv returns it after msgs are drained
	recvWake chan struct{} // signalled when msgs or recvEnd change
	credit   int64         // what this side may still send
	sendEnd  error         // once set, Send fails with it
	sendWake chan struct{} // signalled when credit or sendEnd change
}

func newFlow(id uint64, l *link) *flow {
	return &flow{id: id, link: l, credit: streamWindow, recvWake: make(chan struct{}, 1), sendWake: make(chan struct{}, 1)}
}

// signal wakes one waiter on ch, or the next one to wait.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// push queues a message from the peer. It reports false when the peer sent past
// its credit, which only a broken peer does.
func (f *flow) push(b []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recvEnd != nil {
		return true // nobody reads any more: drop
	}
	f.msgs = append(f.msgs, b)
	f.queued += cost(b)
	signal(f.recvWake)
	return f.queued <= streamWindow+cost(nil)+f.link.maxBody
}

// endRecv ends the receiving direction with err (io.EOF for a clean end). With
// drop, messages still queued are discarded and Recv returns err at once.
func (f *flow) endRecv(err error, drop bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recvEnd == nil {
		f.recvEnd = err
	}
	if drop {
		f.msgs, f.queued = nil, 0
	}
	signal(f.recvWake)
}

// recv returns the next message, waiting for one, and grants the peer credit
// once a quarter window has been read.
func (f *flow) recv() ([]byte, error) {
	f.mu.Lock()
	for len(f.msgs) == 0 && f.recvEnd == nil {
		f.mu.Unlock()
		<-f.recvWake
		f.mu.Lock()
	}
	if len(f.msgs) == 0 {
		err := f.recvEnd
		f.mu.Unlock()
		signal(f.recvWake) // other readers see the end too
		return nil, err
	}
	b := f.msgs[0]
	f.msgs[0] = nil
	f.msgs = f.msgs[1:]
	f.queued -= cost(b)
	f.unacked += cost(b)
	var grant int64
	if f.unacked >= streamWindow/4 && f.recvEnd == nil {
		grant, f.unacked = f.unacked, 0
	}
	if len(f.msgs) > 0 {
		signal(f.recvWake)
	}
	f.mu.Unlock()
	if grant > 0 {
		// A failure here ends the whole connection, which every stream on it sees.
		_, _ = f.link.send(f.link.ctx, &frame{typ: frameWindow, id: f.id, payload: binary.BigEndian.AppendUint32(nil, uint32(grant))})
	}
	return b, nil
}

// takeCredit waits until the window allows sending a message of cost c.
func (f *flow) takeCredit(c int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.sendEnd == nil && f.credit <= 0 {
		f.mu.Unlock()
		<-f.sendWake
		f.mu.Lock()
	}
	if f.sendEnd != nil {
		signal(f.sendWake)
		return f.sendEnd
	}
	// A message may overdraw the credit: the window bounds what is in flight to
	// one window plus one message, and any message size stays sendable.
	f.credit -= c
	return nil
}

// grant adds credit the peer returned in a window frame.
func (f *flow) grant(payload []byte) {
	if len(payload) != 4 {
		return
	}
	f.mu.Lock()
	f.credit += int64(binary.BigEndian.Uint32(payload))
	f.mu.Unlock()
	signal(f.sendWake)
}

// endSend makes every Send from now on fail with err.
func (f *flow) endSend(err error) {
	f.mu.Lock()
	if f.sendEnd == nil {
		f.sendEnd = err
	}
	f.mu.Unlock()
	signal(f.sendWake)
}
