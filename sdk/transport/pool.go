package transport

import (
	"context"
	stderrors "errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/microhost/micro/sdk/errors"
)

// PoolStats is a snapshot of one address's connection pool, or, once the pool is
// gone, of the connections to the address still open.
type PoolStats struct {
	Addr      string // host:port, with the scheme's default port if dialed without one
	Open      int    // connections open now
	Idle      int    // open connections with no call on them
	InUse     int    // calls in flight
	MaxOpen   int    // the configured cap
	PoolWaits        // of this pool: gone with it (see HTTP.WaitTotals)
	Healthy   bool   // result of the last background health check
}

// retired is set in a pool's users count when the pool is forgotten. A pool is
// retired only while no call is in it, and a retired pool admits no call, so an
// address never has two pools with calls in them.
const retired = 1 << 62

// errRetired sends a call on to its address's current pool.
var errRetired = stderrors.New("transport: pool retired")

// pool bounds and measures the calls and connections to one address.
type pool struct {
	addr        string
	conns       *addrConns    // the address's connections, which outlive the pool
	slots       chan struct{} // one token per call allowed in flight
	waitTimeout time.Duration
	perConn     int // calls one connection carries at once (1 for HTTP/1.1)

	users    atomic.Int64 // calls holding or waiting for a slot, plus retired once forgotten
	inUse    atomic.Int64
	waits    waitCounters  // this pool's
	total    *waitCounters // the transport's, over every pool it has had
	healthy  atomic.Bool
	lastUsed atomic.Int64 // unix nanoseconds
}

// waitCounters count the calls that waited for a pool slot.
type waitCounters struct {
	waits    atomic.Int64
	waitNS   atomic.Int64
	timeouts atomic.Int64
}

func (w *waitCounters) snapshot() PoolWaits {
	return PoolWaits{Waits: w.waits.Load(), WaitTime: time.Duration(w.waitNS.Load()), Timeouts: w.timeouts.Load()}
}

// PoolWaits counts the calls that had to wait for a free pool slot.
type PoolWaits struct {
	Waits    int64         // calls that had to wait
	WaitTime time.Duration // total time they waited
	Timeouts int64         // calls that gave up waiting
}

func newPool(addr string, conns *addrConns, o PoolOptions, perConn int, total *waitCounters) *pool {
	p := &pool{
		addr:        addr,
		conns:       conns,
		total:       total,
		slots:       make(chan struct{}, o.MaxOpen*perConn),
		waitTimeout: o.WaitTimeout,
		perConn:     perConn,
	}
	p.healthy.Store(true)
	p.lastUsed.Store(time.Now().UnixNano())
	return p
}

// acquire takes a call slot, waiting at most the pool's wait timeout (or ctx).
// It returns errRetired, having waited for nothing, once the pool is retired.
func (p *pool) acquire(ctx context.Context) error {
	if p.users.Add(1)&retired != 0 {
		p.users.Add(-1)
		return errRetired
	}
	select {
	case p.slots <- struct{}{}:
		p.inUse.Add(1)
		return nil
	default:
	}
	start := time.Now()
	p.waits.waits.Add(1)
	p.total.waits.Add(1)
	timer := time.NewTimer(p.waitTimeout)
	defer timer.Stop()
	defer func() {
		d := int64(time.Since(start))
		p.waits.waitNS.Add(d)
		p.total.waitNS.Add(d)
	}()
	select {
	case p.slots <- struct{}{}:
		p.inUse.Add(1)
		return nil
	case <-timer.C:
		p.waits.timeouts.Add(1)
		p.total.timeouts.Add(1)
		p.users.Add(-1)
		return fmt.Errorf("%w: %w", ErrNotSent, errors.Unavailable("", "connection pool for %s is exhausted: %d calls in flight, waited %s; raise the pool's max_open or add instances", p.addr, cap(p.slots), p.waitTimeout))
	case <-ctx.Done():
		p.waits.timeouts.Add(1)
		p.total.timeouts.Add(1)
		p.users.Add(-1)
		return fmt.Errorf("%w: waiting for a connection to %s: %w", ErrNotSent, p.addr, ctx.Err())
	}
}

// release returns a call slot.
func (p *pool) release() {
	p.inUse.Add(-1)
	p.lastUsed.Store(time.Now().UnixNano())
	<-p.slots
	p.users.Add(-1)
}

// retire marks the pool forgotten if no call holds or waits for a slot in it,
// and reports whether it did.
func (p *pool) retire() bool { return p.users.CompareAndSwap(0, retired) }

// isRetired reports whether the pool was forgotten.
func (p *pool) isRetired() bool { return p.users.Load()&retired != 0 }

func (p *pool) stats() PoolStats {
	open := int(p.conns.open.Load())
	inUse := int(p.inUse.Load())
	busyConns := (inUse + p.perConn - 1) / p.perConn
	idle := open - busyConns
	if idle < 0 {
		idle = 0
	}
	return PoolStats{
		Addr:      p.addr,
		Open:      open,
		Idle:      idle,
		InUse:     inUse,
		MaxOpen:   cap(p.slots) / p.perConn,
		PoolWaits: p.waits.snapshot(),
		Healthy:   p.healthy.Load(),
	}
}

// addrConns counts the open connections to one dialed address. The round
// trippers keep connections across pools, so the count lives as long as the
// address has a connection or a pool, not as long as one pool.
type addrConns struct {
	key  string
	open atomic.Int64
	refs int // open connections plus live pools; guarded by HTTP.connsMu
}

// stats reports an address that has connections but no pool: they are all idle,
// and unchecked, so healthy as Healthy reports an address without a pool. It
// reports false once no connection is open.
func (a *addrConns) stats(maxOpen int) (PoolStats, bool) {
	open := int(a.open.Load())
	return PoolStats{Addr: a.key, Open: open, Idle: open, MaxOpen: maxOpen, Healthy: true}, open > 0
}

// countedConn counts itself open in its address's addrConns until closed.
type countedConn struct {
	net.Conn
	t    *HTTP
	a    *addrConns
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.a.open.Add(-1)
		c.t.dropConns(c.a)
	})
	return c.Conn.Close()
}
