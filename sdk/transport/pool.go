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
	Addr     string        // host:port, with the scheme's default port if dialed without one
	Open     int           // connections open now
	Idle     int           // open connections with no call on them
	InUse    int           // calls in flight
	MaxOpen  int           // the configured cap
	Waits    int64         // calls that had to wait for a free slot
	WaitTime time.Duration // total time calls spent waiting
	Timeouts int64         // calls that gave up waiting
	Healthy  bool          // result of the last background health check
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
	waits    atomic.Int64
	waitNS   atomic.Int64
	timeouts atomic.Int64
	healthy  atomic.Bool
	lastUsed atomic.Int64 // unix nanoseconds
}

func newPool(addr string, conns *addrConns, o PoolOptions, perConn int) *pool {
	p := &pool{
		addr:        addr,
		conns:       conns,
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
	p.waits.Add(1)
	timer := time.NewTimer(p.waitTimeout)
	defer timer.Stop()
	defer func() { p.waitNS.Add(int64(time.Since(start))) }()
	select {
	case p.slots <- struct{}{}:
		p.inUse.Add(1)
		return nil
	case <-timer.C:
		p.timeouts.Add(1)
		p.users.Add(-1)
		return fmt.Errorf("%w: %w", ErrNotSent, errors.Unavailable("", "connection pool for %s is exhausted: %d calls in flight, waited %s; raise the pool's max_open or add instances", p.addr, cap(p.slots), p.waitTimeout))
	case <-ctx.Done():
		p.timeouts.Add(1)
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
		Addr:     p.addr,
		Open:     open,
		Idle:     idle,
		InUse:    inUse,
		MaxOpen:  cap(p.slots) / p.perConn,
		Waits:    p.waits.Load(),
		WaitTime: time.Duration(p.waitNS.Load()),
		Timeouts: p.timeouts.Load(),
		Healthy:  p.healthy.Load(),
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
