package plugin

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
)

// Buffer sizes of a data path connection: its reader and writer buffers, and
// the largest frame buffer kept for reuse (larger ones go to the collector).
const (
	frameIOBuffer   = 32 << 10
	frameBufKeepCap = 64 << 10
)

// frameHandler handles one frame the peer sent: its type and id, and a decoder
// of the fields that follow. An error closes the connection.
type frameHandler func(typ byte, id uint64, d *frameDecoder) error

// outFrame is an encoded frame waiting for the writer; call is the id of the
// call it starts (0 for other frames), to fail the call as not sent when the
// frame is never written.
type outFrame struct {
	buf  *[]byte
	call uint64
}

// frameConn is one data path connection: one reader goroutine hands each frame
// to a handler, and one writer goroutine writes queued frames through a
// bufio.Writer, flushing only when its queue is empty, so frames queued while it
// writes leave together in as few TLS records and syscalls as possible.
type frameConn struct {
	nc       net.Conn
	onUnsent func(call uint64) // a call frame was never written
	bufs     sync.Pool         // of *[]byte frame buffers

	mu     sync.Mutex
	queue  []outFrame
	spare  []outFrame
	closed bool
	wake   chan struct{} // capacity 1: something was queued, or the connection closed

	writerDone chan struct{}
	done       chan struct{} // closed once both goroutines returned
	err        error         // why the connection ended; read after done
}

// newFrameConn wraps nc; start runs it.
func newFrameConn(nc net.Conn, onUnsent func(call uint64)) *frameConn {
	return &frameConn{
		nc:         nc,
		onUnsent:   onUnsent,
		wake:       make(chan struct{}, 1),
		writerDone: make(chan struct{}),
		done:       make(chan struct{}),
	}
}

// start runs the reader and writer goroutines. When reading fails (the peer
// went away, a frame was malformed, or close was called) the connection closes,
// finished runs with the reason, and done closes.
func (c *frameConn) start(handle frameHandler, finished func(error)) {
	go c.writeLoop()
	go func() {
		err := c.readLoop(handle)
		c.close()
		<-c.writerDone
		c.err = err
		finished(err)
		close(c.done)
	}()
}

// getBuf returns an empty frame buffer.
func (c *frameConn) getBuf() *[]byte {
	if b, ok := c.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 512)
	return &b
}

// putBuf takes back a frame buffer that is no longer needed.
func (c *frameConn) putBuf(b *[]byte) {
	if cap(*b) > frameBufKeepCap {
		return
	}
	*b = (*b)[:0]
	c.bufs.Put(b)
}

// send queues an encoded frame for the writer and takes buf over. It reports
// false when the connection is closed; the frame was not sent.
func (c *frameConn) send(buf *[]byte, call uint64) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.putBuf(buf)
		return false
	}
	c.queue = append(c.queue, outFrame{buf: buf, call: call})
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return true
}

// close closes the connection: the reader fails, the writer stops, and frames
// still queued are not sent. Safe to call more than once.
func (c *frameConn) close() {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if already {
		return
	}
	_ = c.nc.Close()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// take swaps the queue out for the writer.
func (c *frameConn) take() ([]outFrame, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queue
	c.queue = c.spare[:0]
	c.spare = nil
	return q, c.closed
}

// giveBack returns the writer's drained queue slice for reuse.
func (c *frameConn) giveBack(q []outFrame) {
	clear(q)
	c.mu.Lock()
	if c.spare == nil {
		c.spare = q[:0]
	}
	c.mu.Unlock()
}

// writeLoop is the writer goroutine.
func (c *frameConn) writeLoop() {
	defer close(c.writerDone)
	out := &countingWriter{w: c.nc}
	bw := bufio.NewWriterSize(out, frameIOBuffer)
	var calls unflushedCalls
	var err error
	for range c.wake {
		// Let callers that are ready queue their frames first: a bigger batch.
		runtime.Gosched()
		for {
			q, closed := c.take()
			if closed || err != nil {
				c.drop(q)
				c.failUnsent(calls.unsent(out.n))
				c.close()
				return
			}
			if len(q) == 0 {
				break
			}
			for i, f := range q {
				_, err = bw.Write(*f.buf)
				calls.add(f.call, len(*f.buf))
				c.putBuf(f.buf)
				if err != nil {
					c.drop(q[i+1:])
					break
				}
			}
			if err == nil {
				c.giveBack(q)
				calls.left(out.n)
			}
		}
		if err == nil && bw.Buffered() > 0 {
			err = bw.Flush()
		}
		if err != nil {
			c.close()
			c.failUnsent(calls.unsent(out.n))
			q, _ := c.take()
			c.drop(q)
			return
		}
		calls.left(out.n)
	}
}

// drop fails the frames of q that were never written.
func (c *frameConn) drop(q []outFrame) {
	for _, f := range q {
		if f.call != 0 && c.onUnsent != nil {
			c.onUnsent(f.call)
		}
		c.putBuf(f.buf)
	}
}

// failUnsent fails the calls whose frames never left whole.
func (c *frameConn) failUnsent(calls []uint64) {
	if c.onUnsent == nil {
		return
	}
	for _, id := range calls {
		c.onUnsent(id)
	}
}

// countingWriter counts the bytes the connection took, so that when a write
// fails the writer knows which frames never left whole.
type countingWriter struct {
	w io.Writer
	n int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.n += int64(n)
	return n, err
}

// unflushedCalls are the call frames handed to the writer's buffer that the
// connection may not have taken whole yet, in order, by where each ends in the
// stream. The plugin acts only on whole frames, so a call whose frame did not
// leave whole when the connection broke was never made: it fails as not sent,
// and the caller may safely try another node.
type unflushedCalls struct {
	buffered int64 // bytes handed to the buffer so far
	ids      []uint64
	ends     []int64
}

// add records a frame of size bytes handed to the buffer; call is 0 for
// frames that start no call.
func (u *unflushedCalls) add(call uint64, size int) {
	u.buffered += int64(size)
	if call != 0 {
		u.ids = append(u.ids, call)
		u.ends = append(u.ends, u.buffered)
	}
}

// left forgets the calls whose frames the connection has taken whole, written
// bytes in all.
func (u *unflushedCalls) left(written int64) {
	k := 0
	for k < len(u.ends) && u.ends[k] <= written {
		k++
	}
	if k == 0 {
		return
	}
	n := copy(u.ids, u.ids[k:])
	copy(u.ends, u.ends[k:])
	u.ids, u.ends = u.ids[:n], u.ends[:n]
}

// unsent returns the calls whose frames did not leave whole, written bytes in
// all having left, and forgets them.
func (u *unflushedCalls) unsent(written int64) []uint64 {
	u.left(written)
	ids := u.ids
	u.ids, u.ends = nil, nil
	return ids
}

// readLoop is the reader goroutine: it reads frames until the connection fails.
func (c *frameConn) readLoop(handle frameHandler) error {
	br := bufio.NewReaderSize(c.nc, frameIOBuffer)
	var prefix [frameLenSize]byte
	for {
		p, err := readFrame(br, prefix[:])
		if err != nil {
			return err
		}
		d := frameDecoder{p: p}
		typ, id := d.byte(), d.uvarint()
		if d.bad {
			return errBadFrame
		}
		if err := handle(typ, id, &d); err != nil {
			return err
		}
	}
}

// readFrame reads one frame's payload, into a fresh buffer: messages decoded
// from it alias it. prefix is scratch space for the length.
func readFrame(r io.Reader, prefix []byte) ([]byte, error) {
	if _, err := io.ReadFull(r, prefix[:frameLenSize]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(prefix)
	if n == 0 || n > dataFrameLimit {
		return nil, fmt.Errorf("%w: a frame of %d bytes", errBadFrame, n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, err
	}
	return p, nil
}
