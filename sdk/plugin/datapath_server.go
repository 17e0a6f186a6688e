package plugin

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	stderrors "errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/transport"
)

// dataPathHandshakeTimeout bounds the TLS handshake of a data path connection.
const dataPathHandshakeTimeout = 10 * time.Second

// dataServer is a transport plugin's data path: a loopback listener under the
// plugin channel's mutual TLS (only the host's client certificate gets in), and
// the connections the host opened on it. It listens on the first DataPath call.
type dataServer struct {
	ts  *transportServer
	tls *tls.Config

	listen  func() (net.Listener, error) // listenDataPath, but for tests
	ln      net.Listener                 // nil until the first DataPath call listens
	network string
	addr    string
	version uint32 // the frame protocol the host last asked for, under mu

	// stopped ends with Close: waits of the accept loop and handshakes in
	// progress end with it.
	stopped context.Context
	stop    context.CancelFunc

	mu     sync.Mutex
	nextID uint64
	conns  map[uint64]*dataServerConn
	closed bool
	wg     sync.WaitGroup // the accept loop and the connections' goroutines
}

func newDataServer(ts *transportServer, cfg *tls.Config) *dataServer {
	stopped, stop := context.WithCancel(context.Background())
	return &dataServer{ts: ts, tls: cfg, listen: listenDataPath, conns: make(map[uint64]*dataServerConn), stopped: stopped, stop: stop}
}

// endpoint returns the network and address the data path listens on,
// listening first; the host's next connections speak version. A failure to
// listen (the process is out of file descriptors, say) is not kept: the host
// asks again later, and the next call tries again.
func (s *dataServer) endpoint(version uint32) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version = version
	switch {
	case s.closed:
		return "", "", stderrors.New("the data path is closed")
	case s.ln != nil:
		return s.network, s.addr, nil
	}
	ln, err := s.listen()
	if err != nil {
		return "", "", fmt.Errorf("data path: %w", err)
	}
	s.ln, s.network, s.addr = ln, ln.Addr().Network(), ln.Addr().String()
	s.wg.Add(1)
	go s.accept()
	return s.network, s.addr, nil
}

// listenDataPath listens where only this machine can connect. On Linux that is
// a Unix socket in the abstract namespace: cheaper per message than TCP
// loopback, and it leaves no file behind when the plugin is killed. Elsewhere,
// and if that fails, it is TCP on 127.0.0.1. Either way mutual TLS decides who
// gets in.
func listenDataPath() (net.Listener, error) {
	if runtime.GOOS == "linux" {
		var name [12]byte
		if _, err := rand.Read(name[:]); err == nil {
			ln, err := net.Listen("unix", fmt.Sprintf("@microhost-plugin-%d-%x", os.Getpid(), name))
			if err == nil {
				return ln, nil
			}
		}
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// Waits of the accept loop after a failed Accept (the process is out of file
// descriptors, say): from acceptMinWait, doubling up to acceptMaxWait.
const (
	acceptMinWait = 5 * time.Millisecond
	acceptMaxWait = time.Second
)

// accept takes the host's connections until the listener closes. Any other
// failure of Accept passes: it waits a little and accepts again, since the
// host keeps dialing the address DataPath gave it.
func (s *dataServer) accept() {
	defer s.wg.Done()
	var wait time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if stderrors.Is(err, net.ErrClosed) {
				return
			}
			wait = min(max(2*wait, acceptMinWait), acceptMaxWait)
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-s.stopped.Done():
				t.Stop()
				return
			}
			continue
		}
		wait = 0
		s.wg.Add(1)
		go s.serve(nc)
	}
}

// serve authenticates one connection, numbers it and runs it.
func (s *dataServer) serve(nc net.Conn) {
	defer s.wg.Done()
	tc := tls.Server(nc, s.tls)
	ctx, cancel := context.WithTimeout(s.stopped, dataPathHandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		tc.Close() // no or a wrong client certificate: refused
		return
	}
	c := &dataServerConn{s: s, reqs: make(map[uint64]chan *transport.Message)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.fc = newFrameConn(tc, nil)
	c.work = newWorkerPool(c.fc.done, c.call)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		tc.Close()
		return
	}
	s.nextID++
	c.id = s.nextID
	c.version = s.version
	s.conns[c.id] = c
	s.mu.Unlock()

	buf := c.fc.getBuf()
	b := beginFrame((*buf)[:0], frameHello, c.id)
	*buf = endFrame(binary.AppendUvarint(b, uint64(c.version)), 0)
	c.fc.send(buf, 0)
	finished := make(chan struct{})
	c.fc.start(c.handle, func(error) {
		c.cancel()
		s.mu.Lock()
		delete(s.conns, c.id)
		s.mu.Unlock()
		close(finished)
	})
	<-finished
	c.wg.Wait()
}

// conn returns the connection numbered id, or nil when it is gone.
func (s *dataServer) conn(id uint64) *dataServerConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[id]
}

// Close stops listening, closes every connection (calls on them are cancelled,
// forwarded requests answer 503) and waits for their goroutines.
func (s *dataServer) Close() error {
	s.stop()
	s.mu.Lock()
	s.closed = true
	ln := s.ln
	conns := make([]*dataServerConn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.fc.close()
	}
	s.wg.Wait()
	return nil
}

// dataServerConn is the plugin's end of one data path connection: it runs the
// host's calls, and forwards the requests of the listeners the host bound to it.
type dataServerConn struct {
	s       *dataServer
	id      uint64
	version uint32 // the frame protocol, from the hello
	fc      *frameConn
	ctx     context.Context // the calls' parent: ends with the connection
	cancel  context.CancelFunc
	wg      sync.WaitGroup // calls in flight
	work    *workerPool[dataCall]
	calls   inFlight // calls in flight, which the host may cancel

	mu      sync.Mutex
	nextReq uint64
	reqs    map[uint64]chan *transport.Message // forwarded requests waiting for the host
}

// handle is the reader's frame handler.
func (c *dataServerConn) handle(typ byte, id uint64, d *frameDecoder) error {
	switch typ {
	case frameCall:
		timeout := d.uvarint()
		addr := d.string()
		msg, err := d.message()
		if err != nil {
			return err
		}
		var ctx context.Context
		var cancel context.CancelFunc
		if timeout > 0 {
			ctx, cancel = context.WithTimeout(c.ctx, time.Duration(timeout)*time.Microsecond)
		} else {
			ctx, cancel = context.WithCancel(c.ctx)
		}
		c.calls.track(id, cancel)
		c.wg.Add(1)
		c.work.submit(dataCall{ctx: ctx, id: id, addr: addr, msg: msg})
	case frameCancel:
		c.calls.giveUp(id)
	case frameResponse:
		msg, err := d.message()
		if err != nil {
			return err
		}
		c.mu.Lock()
		ch := c.reqs[id]
		delete(c.reqs, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- msg
		}
	default:
		return fmt.Errorf("%w: unexpected frame type %d from the host", errBadFrame, typ)
	}
	return nil
}

// dataCall is a call frame for a worker to make.
type dataCall struct {
	ctx  context.Context
	id   uint64
	addr string
	msg  *transport.Message
}

// call makes one call of the host's through the plugin's transport and answers
// with a result frame: the response, or the failure's envelope (marked not sent
// for a 503, which the plugin answers only for requests that never left).
func (c *dataServerConn) call(dc dataCall) {
	defer c.wg.Done()
	id, addr := dc.id, dc.addr
	out, failure := c.s.ts.callMessage(dc.ctx, addr, dc.msg)
	c.calls.done(id)
	if failure == nil {
		if size := frameSize(id, 1+messageSize(out)); size > dataFrameLimit {
			failure = errors.BadGateway("", "response from %s of %d bytes is over the plugin boundary's %d byte limit", addr, size, dataFrameLimit)
		}
	}
	buf := c.fc.getBuf()
	b := beginFrame((*buf)[:0], frameResult, id)
	if failure == nil {
		b = appendMessage(append(b, resultOK), out)
	} else {
		st := resultError
		if failure.Code == http.StatusServiceUnavailable {
			st = resultNotSent
		}
		b = append(append(b, st), resultEnvelope(failure)...)
	}
	*buf = endFrame(b, 0)
	c.fc.send(buf, 0)
}

// forward hands a request of listener lid to the host and waits for the answer
// until ctx ends (the remote caller's), stop closes (the listener's session
// ended) or the connection breaks.
func (c *dataServerConn) forward(ctx context.Context, stop <-chan struct{}, name string, lid uint64, req *transport.Message) *transport.Message {
	if size := frameSize(1<<63, uvarintLen(lid)+messageSize(req)); size > dataFrameLimit {
		return transportErrorMessage(errors.PayloadTooLarge("", "request of %d bytes is over the plugin boundary's %d byte limit; send less", size, dataFrameLimit))
	}
	ch := make(chan *transport.Message, 1)
	c.mu.Lock()
	c.nextReq++
	id := c.nextReq
	c.reqs[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.reqs, id)
		c.mu.Unlock()
	}()
	buf := c.fc.getBuf()
	b := binary.AppendUvarint(beginFrame((*buf)[:0], frameRequest, id), lid)
	*buf = endFrame(appendMessage(b, req), 0)
	if !c.fc.send(buf, 0) {
		return transportErrorMessage(errors.Unavailable("", "transport %s: cannot reach the host: %v", name, errListenerGone("the host")))
	}
	select {
	case resp := <-ch:
		return resp
	case <-ctx.Done():
		c.giveUp(id)
		if stderrors.Is(ctx.Err(), context.DeadlineExceeded) {
			return transportErrorMessage(errors.Timeout("", "transport %s: the host did not answer in time", name))
		}
		return transportErrorMessage(errors.Unavailable("", "transport %s: the call was cancelled before the host answered", name))
	case <-stop:
		return transportErrorMessage(errListenerGone("the host"))
	case <-c.fc.done:
		return transportErrorMessage(errListenerGone("the host"))
	}
}

// giveUp tells the host the remote caller of request id gave up, so the
// handler's context ends; a version 1 host would take the frame for a broken
// peer, and is not told.
func (c *dataServerConn) giveUp(id uint64) {
	if c.version < 2 {
		return
	}
	buf := c.fc.getBuf()
	*buf = endFrame(beginFrame((*buf)[:0], frameGiveUp, id), 0)
	c.fc.send(buf, 0)
}
