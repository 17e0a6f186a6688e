package plugin

import (
	"net"
	"slices"
	"sync"
	"syscall"
	"testing"
)

// cutConn takes the first limit bytes written to it, then fails writes as a
// connection the peer reset does; reads wait until it is closed.
type cutConn struct {
	net.Conn // nil: a frameConn only reads, writes and closes
	limit    int

	mu     sync.Mutex
	took   int
	closed chan struct{}
	once   sync.Once
}

func newCutConn(limit int) *cutConn { return &cutConn{limit: limit, closed: make(chan struct{})} }

func (c *cutConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := max(0, min(len(p), c.limit-c.took))
	c.took += n
	if n < len(p) {
		return n, &net.OpError{Op: "write", Net: "unix", Err: syscall.ECONNRESET}
	}
	return n, nil
}

func (c *cutConn) Read([]byte) (int, error) {
	<-c.closed
	return 0, net.ErrClosed
}

func (c *cutConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// TestFrameConnFailsCallsThatNeverLeftWhole breaks the connection under call
// frames at different points: every call whose frame the connection did not
// take whole was never made by the plugin, so it must fail as not sent (the
// caller may then try another node), and a call whose frame left whole must not.
func TestFrameConnFailsCallsThatNeverLeftWhole(t *testing.T) {
	frame := func(id uint64) *[]byte {
		b := beginFrame(nil, frameCall, id)
		b = appendString(b, "127.0.0.1:8080")
		b = append(b, make([]byte, 100)...)
		b = endFrame(b, 0)
		return &b
	}
	size := len(*frame(1))
	tests := []struct {
		name   string
		limit  int
		unsent []uint64
	}{
		{"nothing taken", 0, []uint64{1, 2, 3}},
		{"first frame whole, second cut", size + 3, []uint64{2, 3}},
		{"two frames whole", 2 * size, []uint64{3}},
		{"last frame one byte short", 3*size - 1, []uint64{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var unsent []uint64
			fc := newFrameConn(newCutConn(tt.limit), func(id uint64) {
				mu.Lock()
				unsent = append(unsent, id)
				mu.Unlock()
			})
			fc.start(func(byte, uint64, *frameDecoder) error { return nil }, func(error) {})
			t.Cleanup(fc.close)
			for id := uint64(1); id <= 3; id++ {
				if !fc.send(frame(id), id) { // refused: the caller fails it as not sent
					mu.Lock()
					unsent = append(unsent, id)
					mu.Unlock()
				}
			}
			<-fc.done
			mu.Lock()
			defer mu.Unlock()
			slices.Sort(unsent)
			if !slices.Equal(unsent, tt.unsent) {
				t.Fatalf("calls failed as not sent: %v, want %v", unsent, tt.unsent)
			}
		})
	}
}
