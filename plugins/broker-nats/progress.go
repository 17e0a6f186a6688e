package main

import (
	"maps"
	"sync"
)

// maxHandledAbove bounds progress.handled. Past it the oldest knowledge goes:
// a consumer made again may then deliver some handled messages twice, which
// at-least-once allows, and still loses none.
const maxHandledAbove = 4096

// progress is how far a plain JetStream subscription got through its stream,
// by stream sequence, so that a consumer made again after the server deleted
// it starts where the subscription left off: nothing stored meanwhile is lost,
// and what the subscription already handled is, where it can be told, not
// handled again.
//
// It rests on a consumer delivering each message the first time in stream
// order: once the subscription handled every message delivered to it, all of
// its messages up to the highest one are handled. Only messages a joined
// consumer had delivered before the subscription began come back in any order;
// until the server has redelivered all it had not heard acked, the floor stays
// below them. Handled means settled for good: acked, or nacked on the last
// allowed attempt.
type progress struct {
	mu       sync.Mutex
	floor    uint64              // every message of the subscription up to here is handled
	top      uint64              // the highest sequence handled, at least floor
	pending  map[uint64]int      // delivered above floor, not handled yet: the attempts so far
	carried  map[uint64]int      // attempts an earlier consumer made, for pending messages
	handled  map[uint64]struct{} // handled above floor, while the floor could not rise past them
	unseen   int                 // messages of a joined consumer still to be redelivered; -1: no longer countable
	unseenTo uint64              // the highest sequence they may have
}

// newProgress is the progress of a subscription whose consumer is not made yet.
func newProgress() *progress {
	return &progress{pending: map[uint64]int{}, carried: map[uint64]int{}, handled: map[uint64]struct{}{}}
}

// begin starts from the first consumer's state: everything up to ackFloor is
// handled (stored before a new consumer, or acked under the subscription's
// id), and unacked of the messages up to delivered are still to come again.
func (p *progress) begin(ackFloor, delivered uint64, unacked int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.floor, p.top = ackFloor, ackFloor
	if unacked > 0 && delivered > ackFloor {
		p.unseen, p.unseenTo = unacked, delivered
	}
}

// deliver notes that seq is being delivered, the consumer's delivered-th
// time, and returns which attempt it is for the subscription, counting those of
// consumers before a consumer made again, and whether it should be handled:
// false when it was handled already (a consumer made again from an earlier
// message, or an ack the server never heard).
func (p *progress) deliver(seq uint64, delivered int) (attempt int, handle bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq <= p.floor {
		return 0, false
	}
	if _, ok := p.handled[seq]; ok {
		return 0, false
	}
	if _, ok := p.pending[seq]; !ok && p.unseen > 0 && seq <= p.unseenTo {
		p.unseen--
	}
	attempt = p.carried[seq] + delivered
	p.pending[seq] = attempt
	return attempt, true
}

// settle notes that seq was handled for good.
func (p *progress) settle(seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pending, seq)
	delete(p.carried, seq)
	if seq <= p.floor {
		return
	}
	p.top = max(p.top, seq)
	if len(p.pending) == 0 && p.unseen == 0 {
		p.floor = p.top
		clear(p.handled)
		return
	}
	p.handled[seq] = struct{}{}
	if len(p.handled) > maxHandledAbove {
		p.prune()
	}
}

// prune raises the floor to just below the earliest pending message, when it
// may rise, and forgets what it passed; when that leaves most of the bound
// used (a message nacked again and again while later ones are handled), it
// forgets the rest too. Runs with mu held.
func (p *progress) prune() {
	if p.unseen == 0 {
		p.floor = max(p.floor, p.earliestPending()-1)
		for seq := range p.handled {
			if seq <= p.floor {
				delete(p.handled, seq)
			}
		}
	}
	if len(p.handled) > maxHandledAbove/2 {
		clear(p.handled)
		if p.unseen != 0 { // a handled one coming again would now count as unseen
			p.unseen = -1
		}
	}
}

// remake is the stream sequence a consumer made again starts at: the earliest
// message delivered but not handled, or else the one after the last handled;
// while a joined consumer's messages may still come, the one after the floor.
// The new consumer delivers anew those of them acked before the subscription
// began, which would count as unseen: from here they are not countable, and
// the floor stays where it is.
func (p *progress) remake() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	// The new consumer counts deliveries from 1 again: the attempts made so
	// far carry over, so MaxAttempts bounds a message's attempts in all.
	maps.Copy(p.carried, p.pending)
	if p.unseen != 0 {
		p.unseen = -1
		return p.floor + 1
	}
	return p.earliestPending()
}

// earliestPending is the lowest pending sequence, floor+1 when none is.
// Runs with mu held.
func (p *progress) earliestPending() uint64 {
	earliest := uint64(0)
	for seq := range p.pending {
		if earliest == 0 || seq < earliest {
			earliest = seq
		}
	}
	if earliest == 0 {
		return p.floor + 1
	}
	return earliest
}
