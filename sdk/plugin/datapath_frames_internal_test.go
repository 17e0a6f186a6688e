package plugin

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
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
	if _, _, err := s.endpoint(dataPathVersion); err != nil {
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
	if _, _, err := readHello(ctx, nc); err != nil {
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
	if _, _, err := s.endpoint(dataPathVersion); err == nil {
		t.Fatal("the first listen failed, yet endpoint answered")
	}
	network, addr, err := s.endpoint(dataPathVersion)
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
	if _, _, err := readHello(ctx, nc); err != nil {
		t.Fatalf("hello after a failed listen: %v", err)
	}
	if n, _, _ := s.endpoint(dataPathVersion); n != network || listens.Load() != 2 {
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

// TestChooseDataPathVersion checks a plugin answers a host with the newest
// frame protocol both speak, and with none when they share none.
func TestChooseDataPathVersion(t *testing.T) {
	for _, tt := range []struct {
		offered []uint32
		want    uint32
	}{
		{dataPathOffer(), dataPathVersion},
		{[]uint32{1}, 1},       // a host from before giveup
		{[]uint32{1, 2}, 2},    // any order
		{[]uint32{3, 2, 1}, 2}, // a newer host
		{[]uint32{3}, 0},
		{nil, 0},
	} {
		if got := chooseDataPathVersion(tt.offered); got != tt.want {
			t.Errorf("chooseDataPathVersion(%v) = %d, want %d", tt.offered, got, tt.want)
		}
	}
}

// TestVersionOneHostIsNotToldOfGiveUps checks a plugin speaking version 1 with
// a host, which takes any frame it does not know for a broken connection,
// says so in its hello and never sends that host a giveup frame; a version 2
// host is sent one.
func TestVersionOneHostIsNotToldOfGiveUps(t *testing.T) {
	for _, version := range []uint32{1, 2} {
		t.Run(fmt.Sprint("version ", version), func(t *testing.T) {
			host, serverTLS := dataPathTLS(t)
			s := newDataServer(&transportServer{t: transport.NewHTTP()}, serverTLS)
			t.Cleanup(func() { _ = s.Close() })
			network, addr, err := s.endpoint(version)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			d := tls.Dialer{Config: host.ClientConfig()}
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			id, got, err := readHello(ctx, nc)
			if err != nil || got != version {
				t.Fatalf("hello = version %d, %v; want version %d", got, err, version)
			}
			var c *dataServerConn
			for deadline := time.Now().Add(5 * time.Second); c == nil; c = s.conn(id) {
				if time.Now().After(deadline) {
					t.Fatal("the data server never registered the connection")
				}
				time.Sleep(time.Millisecond)
			}

			// A giveup, then a response to the host as a marker: frames leave
			// in order, so the first frame read tells whether giveup was sent.
			c.giveUp(7)
			buf := c.fc.getBuf()
			*buf = endFrame(beginFrame((*buf)[:0], frameResponse, 8), 0)
			c.fc.send(buf, 0)
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			var prefix [frameLenSize]byte
			p, err := readFrame(nc, prefix[:])
			if err != nil {
				t.Fatal(err)
			}
			want := frameResponse
			if version >= 2 {
				want = frameGiveUp
			}
			if p[0] != want {
				t.Fatalf("first frame after a give-up is type %d, want %d", p[0], want)
			}
		})
	}
}
