package main

import (
	"context"
	stderrors "errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Path is where a ws listener upgrades requests to WebSocket.
const Path = "/_micro/ws"

// subprotocol names the frame format in the WebSocket handshake, so a peer
// speaking another version is refused there rather than misread.
const subprotocol = "micro.v1"

// inlineBodyMax is the largest body copied into the frame's buffer; larger
// bodies are written from the caller's slice in a second WebSocket frame.
const inlineBodyMax = 32 << 10

// errLinkClosed is why a link closed by this side ended.
var errLinkClosed = stderrors.New("transport ws: connection closed")

// link is one WebSocket connection carrying frames, for either side: it
// serialises writes, reads frames and ends once.
type link struct {
	ws      *websocket.Conn
	maxBody int64

	ctx    context.Context // ends when the link does
	cancel context.CancelCauseFunc

	wmu  chan struct{} // one frame written at a time; waiting can be given up
	wbuf []byte        // reused under wmu

	closing atomic.Bool // the WebSocket close has begun
}

func newLink(ws *websocket.Conn, maxBody int64) *link {
	ws.SetReadLimit(-1) // readFrame enforces its own limits and skips oversized frames
	ctx, cancel := context.WithCancelCause(context.Background())
	return &link{ws: ws, maxBody: maxBody, ctx: ctx, cancel: cancel, wmu: make(chan struct{}, 1)}
}

// writeGrace is how long a send may go on writing after its caller gave up
// before the link is closed under it.
const writeGrace = time.Second

// cause is why the link ended (nil while it runs).
func (l *link) cause() error { return context.Cause(l.ctx) }

// send writes f. A failure while waiting to write (ctx ended, link closed)
// reports sent false: the peer got nothing. A failure once writing started
// closes the link, since a half-written message cannot be taken back; sent is
// then false as long as the final WebSocket frame was not attempted, because the
// peer acts only on complete messages.
//
// ctx also bounds the write itself: a write still under way writeGrace after
// ctx ended closes the connection (the library cannot abandon half a message
// either). Callers pass their own ctx so a call never outlives its deadline by
// more than that; the server passes l.ctx.
func (l *link) send(ctx context.Context, f *frame) (sent bool, err error) {
	select {
	case l.wmu <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	case <-l.ctx.Done():
		return false, l.cause()
	}
	defer func() { <-l.wmu }()
	if l.ctx.Err() != nil {
		return false, l.cause()
	}

	inline := len(f.payload) <= inlineBodyMax
	buf, err := appendFrame(l.wbuf[:0], f, inline)
	if err != nil {
		return false, err
	}
	if cap(buf) <= 2*inlineBodyMax {
		l.wbuf = buf
	}
	// The library closes the connection when the ctx of a write ends, even
	// when that happens just as the write finishes, which would fail every
	// other call on the link. So it writes under the link's ctx, and a write
	// still under way writeGrace after ctx ended (a peer that stopped
	// reading) closes the link.
	var writing sync.Mutex
	inWrite := true
	unhook := context.AfterFunc(ctx, func() {
		time.AfterFunc(writeGrace, func() {
			writing.Lock()
			defer writing.Unlock()
			if inWrite {
				l.close(fmt.Errorf("transport ws: a write outlasted its caller: %w", context.Cause(ctx)))
			}
		})
	})
	defer func() {
		writing.Lock()
		inWrite = false
		writing.Unlock()
		unhook()
	}()
	w, err := l.ws.Writer(l.ctx, websocket.MessageBinary)
	if err != nil {
		if ctx.Err() == nil {
			l.close(err)
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, err
	}
	if _, err := w.Write(buf); err != nil {
		l.close(err)
		return false, err
	}
	if !inline {
		if _, err := w.Write(f.payload); err != nil {
			l.close(err)
			return false, err
		}
	}
	if err := w.Close(); err != nil {
		l.close(err)
		return true, err
	}
	return true, nil
}

// read returns the next frame; see readFrame for its errors. Only the link's
// read loop calls it.
func (l *link) read() (*frame, error) {
	// Closing the WebSocket ends a blocked read; no context is needed, and one
	// would make the library cut the connection short of the close handshake.
	typ, r, err := l.ws.Reader(context.Background())
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageBinary {
		return nil, fmt.Errorf("%w: a text message", errProtocol)
	}
	return readFrame(r, l.maxBody)
}

// close ends the link at once with cause; the first cause wins.
func (l *link) close(cause error) {
	l.cancel(cause)
	if l.closing.CompareAndSwap(false, true) {
		_ = l.ws.CloseNow()
	}
}

// closeGracefully ends the link with cause and performs the WebSocket close
// handshake with code, bounded by the library's timeouts. Sends not yet
// started fail at once; a message half written stays incomplete, which the
// peer ignores.
func (l *link) closeGracefully(code websocket.StatusCode, reason string, cause error) {
	l.cancel(cause)
	if l.closing.CompareAndSwap(false, true) {
		_ = l.ws.Close(code, reason)
	}
}
