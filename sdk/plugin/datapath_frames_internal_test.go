package plugin

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/transport"
)

// TestFrameDecoderHeaderCountIsNoAllocationBomb decodes a message that claims
// as many header entries as its payload can hold, all of them empty and so one
// map entry in the end: decoding must cost about the payload, not a map sized
// for every claimed entry.
func TestFrameDecoderHeaderCountIsNoAllocationBomb(t *testing.T) {
	n := uint64(dataFrameLimit/2 - 8)
	p := binary.AppendUvarint(nil, n)
	p = append(p, make([]byte, 2*n)...)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := frameDecoder{p: p}
	m, err := d.message()
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("decoding %d empty header entries: %v", n, err)
	}
	if len(m.Header) != 1 {
		t.Fatalf("header has %d entries, want 1", len(m.Header))
	}
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(2*len(p)); got > limit {
		t.Fatalf("decoding a %d byte frame allocated %d bytes, want at most %d", len(p), got, limit)
	}
}

// failingListener fails its first Accept as a process out of file descriptors
// does, then accepts as the listener it wraps.
type failingListener struct {
	net.Listener
	failed atomic.Bool
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.failed.CompareAndSwap(false, true) {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestDataServerAcceptsAfterATransientError has the data path's listener fail
// one Accept the way a plugin out of file descriptors sees it: the host must
// still get in afterwards, not find a listener nobody accepts on.
func TestDataServerAcceptsAfterATransientError(t *testing.T) {
	host, serverTLS := dataPathTLS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newDataServer(&transportServer{t: transport.NewHTTP()}, serverTLS)
	s.listen = func() (net.Listener, error) { return &failingListener{Listener: ln}, nil }
	t.Cleanup(func() { _ = s.Close() })
	if _, _, err := s.endpoint(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := tls.Dialer{Config: host.ClientConfig()}
	nc, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dialing the data path after a failed Accept: %v", err)
	}
	defer nc.Close()
	if _, err := readHello(ctx, nc); err != nil {
		t.Fatalf("hello after a failed Accept: %v", err)
	}
}

// TestDataServerListensAgainAfterAFailedListen has the data path's first listen
// fail as it does in a process out of file descriptors: the failure must not
// stick, so the host's next DataPath request gets a data path it can reach.
func TestDataServerListensAgainAfterAFailedListen(t *testing.T) {
	host, serverTLS := dataPathTLS(t)
	s := newDataServer(&transportServer{t: transport.NewHTTP()}, serverTLS)
	t.Cleanup(func() { _ = s.Close() })
	var listens atomic.Int32
	s.listen = func() (net.Listener, error) {
		if listens.Add(1) == 1 {
			return nil, &net.OpError{Op: "listen", Net: "unix", Err: os.NewSyscallError("socket", syscall.EMFILE)}
		}
		return listenDataPath()
	}
	if _, _, err := s.endpoint(); err == nil {
		t.Fatal("the first listen failed, yet endpoint answered")
	}
	network, addr, err := s.endpoint()
	if err != nil {
		t.Fatalf("endpoint after one failed listen: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := tls.Dialer{Config: host.ClientConfig()}
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		t.Fatalf("dialing the data path after a failed listen: %v", err)
	}
	defer nc.Close()
	if _, err := readHello(ctx, nc); err != nil {
		t.Fatalf("hello after a failed listen: %v", err)
	}
	if n, _, _ := s.endpoint(); n != network || listens.Load() != 2 {
		t.Fatalf("a third endpoint call listened again (%d listens)", listens.Load())
	}
}

// dataPathTLS returns a host's TLS material and the server configuration a
// plugin's data path accepts that host with.
func dataPathTLS(t *testing.T) (*HostTLS, *tls.Config) {
	t.Helper()
	host, err := NewHostTLS()
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := host.ServerBundle()
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, err := ServerTLSFromBundle(bundle)
	if err != nil {
		t.Fatal(err)
	}
	return host, serverTLS
}
