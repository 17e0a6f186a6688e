package plugin

import (
	"context"
	"sync"
)

// inFlight holds the cancel functions of the calls or requests being served,
// by id, so that word of their caller giving up can end their contexts.
type inFlight struct {
	mu      sync.Mutex
	cancels map[uint64]context.CancelFunc
}

// start returns the context to serve id with, under parent.
func (f *inFlight) start(parent context.Context, id uint64) context.Context {
	ctx, cancel := context.WithCancel(parent)
	f.track(id, cancel)
	return ctx
}

// track holds cancel, which ends the context id is served with, for one made
// by the caller (with a timeout, say).
func (f *inFlight) track(id uint64, cancel context.CancelFunc) {
	f.mu.Lock()
	if f.cancels == nil {
		f.cancels = make(map[uint64]context.CancelFunc)
	}
	f.cancels[id] = cancel
	f.mu.Unlock()
}

// done forgets id, served or dropped, and releases its context.
func (f *inFlight) done(id uint64) {
	f.mu.Lock()
	cancel := f.cancels[id]
	delete(f.cancels, id)
	f.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// giveUp ends the context of id, if it is still being served: its caller gave
// up. done still forgets it.
func (f *inFlight) giveUp(id uint64) {
	f.mu.Lock()
	cancel := f.cancels[id]
	f.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}
