package transport

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// okHandler answers 200, or 499 when the call's context ended before wait passed.
type okHandler struct{ wait time.Duration }

func (h okHandler) ServeRequest(ctx context.Context, _ *Message) *Message {
	if h.wait > 0 {
		select {
		case <-time.After(h.wait):
		case <-ctx.Done():
			return &Message{Header: map[string]string{"Micro-Status": "499"}}
		}
	}
	return &Message{}
}

func (okHandler) ServeStream(context.Context, map[string]string, Stream) error { return nil }

// serveWith starts a listener with opts on a free loopback port and returns a
// raw connection to it.
func serveWith(t *testing.T, o httpOptions, h Handler) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newHTTPListener(ln, o)
	done := make(chan error, 1)
	go func() { done <- l.Serve(h) }()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readUntilClosed reads c until the server closes it, failing when that takes
// longer than a few seconds.
func readUntilClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("%s: the server kept the connection open: %v", what, err)
	}
}

// TestListenerClosesIdleConnections checks a keep-alive connection left idle is
// closed by the server instead of being held forever.
func TestListenerClosesIdleConnections(t *testing.T) {
	o := defaultHTTPOptions()
	o.idle = 50 * time.Millisecond
	c := serveWith(t, o, okHandler{})
	if _, err := io.WriteString(c, "POST /A.B HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	readUntilClosed(t, c, "idle keep-alive connection")
}

// TestListenerBoundsReadingABody checks a body trickling in (or announced and
// never sent) does not hold a connection and a handler forever.
func TestListenerBoundsReadingABody(t *testing.T) {
	o := defaultHTTPOptions()
	o.readBody = 50 * time.Millisecond
	// A body that arrives in time leaves the handler all the time it needs.
	c := serveWith(t, o, okHandler{wait: 4 * o.readBody})
	if _, err := io.WriteString(c, "POST /A.B HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a slow handler after a prompt body answered %d, want 200", resp.StatusCode)
	}

	c = serveWith(t, o, okHandler{})
	if _, err := io.WriteString(c, "POST /A.B HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a body that stopped coming: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d, want %d", resp.StatusCode, http.StatusRequestTimeout)
	}
	readUntilClosed(t, c, "connection with an unfinished body")
}
