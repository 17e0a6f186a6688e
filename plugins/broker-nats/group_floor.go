package main

import (
	"context"
	"sync/atomic"
	"time"
)

// groupFloorEvery is how often, at most, a queue group member reads its
// shared consumer's ack floor while it handles messages.
const groupFloorEvery = time.Second

// groupFloor is the ack floor a queue group member last saw its shared
// consumer at: every message up to it was handled by some member. A consumer
// the server deleted is made again just above it, so what the stream stored
// while no consumer existed, and what members left unhandled, still arrives;
// what members acked since the last look comes again, which at-least-once
// allows.
type groupFloor struct {
	seq     atomic.Uint64
	checked atomic.Int64 // unix nanoseconds of the last look
	looking atomic.Bool
}

// saw records the ack floor a look at the consumer found.
func (g *groupFloor) saw(seq uint64) {
	g.seq.Store(seq)
	g.checked.Store(time.Now().UnixNano())
}

// lookAtGroupFloor reads the shared consumer's ack floor in the background,
// unless it was read less than groupFloorEvery ago or a read is under way.
func (s *subscription) lookAtGroupFloor() {
	g := s.group
	if time.Now().UnixNano()-g.checked.Load() < int64(groupFloorEvery) || !g.looking.CompareAndSwap(false, true) {
		return
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		g.looking.Store(false)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer g.looking.Store(false)
		c := s.consumer
		ctx, cancel := context.WithTimeout(s.ctx, c.o.timeout)
		defer cancel()
		cons, err := c.js.Consumer(ctx, c.o.stream, c.cfg.Durable)
		if err != nil { // gone, or the server is away: keep the last floor
			g.checked.Store(time.Now().UnixNano())
			return
		}
		g.saw(cons.CachedInfo().AckFloor.Stream)
	}()
}
