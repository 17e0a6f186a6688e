package transport

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/microhost/micro/sdk/errors"
)

// serveStream runs a bidirectional stream on one HTTP/2 stream (or a full-duplex
// HTTP/1.1 exchange): request body frames in, response body frames out.
func (l *httpListener) serveStream(ctx context.Context, w http.ResponseWriter, r *http.Request, header map[string]string) {
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex() // HTTP/1.1 only; HTTP/2 is always full duplex
	if ct := header["Content-Type"]; ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	s := &serverStream{w: w, rc: rc, body: r.Body, max: l.opts.maxBodyBytes}
	err := l.h.ServeStream(ctx, header, s)
	cut := s.end()
	defer s.mu.Unlock()
	s.closed = true
	if err != nil && !cut {
		if writeFrame(w, frameError, encodeErrorFrame(err)) == nil {
			_ = rc.Flush()
		}
	}
}

// sendGrace is how long a stream whose handler returned waits for a Send of
// another of its goroutines to finish before cutting the response's writes off.
const sendGrace = time.Second

// end takes s.mu once the handler returned. A Send still holding it after
// sendGrace is stuck on a caller that stopped reading: the response's writes
// are cut off (cut is true), since the response must not outlive the handler
// and a drain must not wait for such a caller.
func (s *serverStream) end() (cut bool) {
	if s.mu.TryLock() {
		return false
	}
	locked := make(chan struct{})
	go func() {
		s.mu.Lock()
		close(locked)
	}()
	t := time.NewTimer(sendGrace)
	defer t.Stop()
	select {
	case <-locked:
		return false
	case <-t.C:
		_ = s.rc.SetWriteDeadline(time.Now())
		<-locked
		return true
	}
}

// serverStream is the listener's side of a stream.
type serverStream struct {
	mu     sync.Mutex
	w      io.Writer
	rc     *http.ResponseController
	body   io.ReadCloser
	max    int64
	closed bool
}

func (s *serverStream) Send(body []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("", 499, "stream already ended")
	}
	if err := writeFrame(s.w, frameData, body); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *serverStream) Recv() ([]byte, error) { return readFrame(s.body, s.max) }

// CloseSend does nothing on the server side: returning from the handler ends the
// response.
func (s *serverStream) CloseSend() error { return nil }

func (s *serverStream) Close() error { return s.body.Close() }

// clientStream is the caller's side of a stream.
type clientStream struct {
	mu      sync.Mutex
	send    *io.PipeWriter
	recv    io.ReadCloser
	max     int64
	cancel  context.CancelFunc
	release func()
	once    sync.Once
}

func (s *clientStream) Send(body []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return writeFrame(s.send, frameData, body)
}

func (s *clientStream) Recv() ([]byte, error) {
	b, err := readFrame(s.recv, s.max)
	if err != nil {
		s.finish()
	}
	return b, err
}

func (s *clientStream) CloseSend() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.send.Close()
}

func (s *clientStream) Close() error {
	s.send.CloseWithError(io.ErrClosedPipe)
	err := s.recv.Close()
	s.finish()
	return err
}

// finish frees the pool slot and the request context once.
func (s *clientStream) finish() {
	s.once.Do(func() {
		s.cancel()
		s.release()
	})
}
