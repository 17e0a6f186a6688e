package plugin

import (
	"google.golang.org/protobuf/proto"

	"encoding/json"
	"net/http"
	"runtime"
	"strconv"
	"sync"

	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/transport"
)

// wireLimit is the largest protobuf message either side sends: gRPC's default
// receive limit (4 MiB), which Serve's server keeps. A sender checks it first and
// answers with an error envelope instead, because an oversized message on a
// shared Listen stream would break every request and stream on it.
const wireLimit = 4 << 20

// frameOverhead is what a stream frame costs besides its body, for size checks
// and queue accounting.
const frameOverhead = 64

// streamQueueLimit bounds the bytes one logical stream may hold unread in its
// streamQueue before it fails (four maximum-size bodies).
const streamQueueLimit = 4 * transport.DefaultMaxBodyBytes

// transportMessageToProto converts a transport message for the wire.
func transportMessageToProto(m *transport.Message) *pluginv1.Message {
	if m == nil {
		return &pluginv1.Message{}
	}
	return &pluginv1.Message{Header: m.Header, Body: m.Body}
}

// transportMessageFromProto converts a wire message; the header is never nil.
func transportMessageFromProto(p *pluginv1.Message) *transport.Message {
	h := p.GetHeader()
	if h == nil {
		h = make(map[string]string)
	}
	return &transport.Message{Header: h, Body: p.GetBody()}
}

// transportErrorMessage is err as a response message, the way the built-in http
// transport answers: a JSON envelope with its status in the header.
func transportErrorMessage(err error) *transport.Message {
	e := errors.FromError(err)
	body, mErr := json.Marshal(e)
	if mErr != nil {
		body = []byte(`{"code":500,"status":"Internal Server Error","detail":"unencodable error"}`)
	}
	return &transport.Message{
		Header: map[string]string{
			metadata.ContentType: "application/json",
			metadata.Error:       "1",
			metadata.Status:      strconv.Itoa(int(e.Code)),
		},
		Body: body,
	}
}

// streamErrorText renders err as the JSON envelope an error frame carries.
func streamErrorText(err error) string {
	b, mErr := json.Marshal(errors.FromError(err))
	if mErr != nil {
		return `{"code":500,"status":"Internal Server Error","detail":"unencodable error"}`
	}
	return string(b)
}

// streamErrorFromText reads an error frame's envelope.
func streamErrorFromText(text string) error {
	var e errors.Error
	if err := json.Unmarshal([]byte(text), &e); err != nil || e.Code == 0 {
		return errors.BadGateway("", "stream ended with an unreadable error frame: %q", text)
	}
	return &e
}

// Stream frame constructors.
func streamDataFrame(id uint64, body []byte) *pluginv1.StreamFrame {
	return &pluginv1.StreamFrame{Id: id, Frame: &pluginv1.StreamFrame_Data{Data: body}}
}

func streamCloseSendFrame(id uint64) *pluginv1.StreamFrame {
	return &pluginv1.StreamFrame{Id: id, Frame: &pluginv1.StreamFrame_CloseSend{CloseSend: &pluginv1.Empty{}}}
}

func streamEndFrame(id uint64) *pluginv1.StreamFrame {
	return &pluginv1.StreamFrame{Id: id, Frame: &pluginv1.StreamFrame_End{End: &pluginv1.Empty{}}}
}

func streamErrorFrame(id uint64, err error) *pluginv1.StreamFrame {
	return &pluginv1.StreamFrame{Id: id, Frame: &pluginv1.StreamFrame_Error{Error: streamErrorText(err)}}
}

// frameTooLarge reports whether a body is too big to cross as one stream frame.
func frameTooLarge(body []byte) bool { return len(body)+frameOverhead > wireLimit }

// errFrameTooLarge is the 413 for a stream message too big for the boundary.
func errFrameTooLarge(n int) error {
	return errors.PayloadTooLarge("", "stream message of %d bytes is over the plugin boundary's %d byte limit; send smaller messages", n, wireLimit-frameOverhead)
}

// streamQueue holds the frames of one logical stream that arrive on a shared
// Listen stream, so the goroutine reading that stream never waits on one slow
// consumer (which would stall every other request and stream on the listener).
// It holds at most streamQueueLimit bytes; push reports when that is exceeded.
type streamQueue struct {
	mu     sync.Mutex
	frames []*pluginv1.StreamFrame
	bytes  int
	err    error         // once set, pop returns it after the queued frames
	wake   chan struct{} // capacity 1: something was pushed or the queue failed
}

func newStreamQueue() *streamQueue { return &streamQueue{wake: make(chan struct{}, 1)} }

// push appends f without blocking. It returns false when f would take the queue
// over its limit; frames pushed after the queue failed are dropped silently.
func (q *streamQueue) push(f *pluginv1.StreamFrame) bool {
	n := len(f.GetData()) + frameOverhead
	q.mu.Lock()
	if q.err != nil {
		q.mu.Unlock()
		return true
	}
	if q.bytes+n > streamQueueLimit {
		q.mu.Unlock()
		return false
	}
	q.frames = append(q.frames, f)
	q.bytes += n
	q.mu.Unlock()
	q.signal()
	return true
}

// fail ends the queue with err (the first error wins); with drop, frames still
// queued are discarded so pop returns err at once.
func (q *streamQueue) fail(err error, drop bool) {
	q.mu.Lock()
	if q.err == nil {
		q.err = err
	}
	if drop {
		q.frames, q.bytes = nil, 0
	}
	q.mu.Unlock()
	q.signal()
}

// pop returns the next frame, blocking until one arrives. Once the queue failed
// and is empty it returns the error; when done closes first it returns nil, nil.
func (q *streamQueue) pop(done <-chan struct{}) (*pluginv1.StreamFrame, error) {
	for {
		q.mu.Lock()
		if len(q.frames) > 0 {
			f := q.frames[0]
			q.frames[0] = nil
			q.frames = q.frames[1:]
			q.bytes -= len(f.GetData()) + frameOverhead
			q.mu.Unlock()
			return f, nil
		}
		err := q.err
		q.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-q.wake:
		case <-done:
			return nil, nil
		}
	}
}

func (q *streamQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// errListenerGone is the 503 for work that was in flight when the other side of
// a Listen stream went away.
func errListenerGone(who string) error {
	return errors.New("", http.StatusServiceUnavailable, "%s stopped listening", who)
}

// batchItemOverhead bounds what a message costs besides its own size as one
// element of a batch (its tag and length), and what a batch costs as the member
// of its envelope; batches stay within wireLimit with it.
const batchItemOverhead = 16

// fitsBatch reports whether a message of n bytes can cross the boundary inside
// a batch.
func fitsBatch(n int) bool { return n+2*batchItemOverhead <= wireLimit }

// batcher queues messages for the single goroutine that writes them, which
// sends everything pending at once: batches form by themselves under load,
// without timers, and an idle batcher adds no latency.
type batcher[T any] struct {
	mu     sync.Mutex
	items  []T
	sizes  []int
	closed bool
	wake   chan struct{} // capacity 1: something was pushed
}

func newBatcher[T any]() *batcher[T] { return &batcher[T]{wake: make(chan struct{}, 1)} }

// push queues item, of size bytes, for the writer; false once the writer is gone.
func (b *batcher[T]) push(item T, size int) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	b.items = append(b.items, item)
	b.sizes = append(b.sizes, size)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return true
}

// take returns what is queued; with close, nothing more can be pushed.
func (b *batcher[T]) take(close bool) ([]T, []int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	items, sizes := b.items, b.sizes
	b.items, b.sizes = nil, nil
	if close {
		b.closed = true
	}
	return items, sizes
}

// run is the writer: it sends what is queued in batches of at most wireLimit
// bytes until done closes, then sends what is left and returns. When send fails
// it stops at once and returns the items not sent with the error.
func (b *batcher[T]) run(done <-chan struct{}, send func([]T) error) ([]T, error) {
	for {
		last := false
		select {
		case <-b.wake:
		case <-done:
			last = true
		}
		if !last {
			runtime.Gosched() // let goroutines that are ready push first: a bigger batch
		}
		items, sizes := b.take(last)
		for len(items) > 0 {
			n, total := 0, batchItemOverhead
			for n < len(items) && (n == 0 || total+sizes[n]+batchItemOverhead <= wireLimit) {
				total += sizes[n] + batchItemOverhead
				n++
			}
			if err := send(items[:n:n]); err != nil {
				rest, _ := b.take(true)
				return append(items, rest...), err
			}
			clear(items[:n]) // the writer keeps no message alive
			items, sizes = items[n:], sizes[n:]
		}
		if last {
			return nil, nil
		}
	}
}

// batchSize is the size to account m with in a batch, and whether it fits one.
// body is the Message inside m, and extra what m holds besides it and a few
// scalars (an address, an error). It bounds the size from the header and body
// lengths first, and walks m with proto.Size only when that bound is too big:
// sizing a header map costs about as much as encoding it.
func batchSize(m proto.Message, body *pluginv1.Message, extra int) (int, bool) {
	n := len(body.GetBody()) + extra + 64
	for k, v := range body.GetHeader() {
		n += len(k) + len(v) + 18
	}
	if fitsBatch(n) {
		return n, true
	}
	n = proto.Size(m) + 11 // room for an id set later
	return n, fitsBatch(n)
}

// givenUpSize is what a give-up marker is accounted with in a batch.
const givenUpSize = 16

// idMessage is a call or request queued in a batcher: one without a message
// is a marker saying its caller gave up, which the writer sends in the batch's
// given_up list instead (real ones always carry a message).
type idMessage interface {
	GetId() uint64
	GetMessage() *pluginv1.Message
}

// splitGivenUp separates the give-up markers from the real items of a batch,
// copying nothing when there are none.
func splitGivenUp[T idMessage](items []T) (real []T, givenUp []uint64) {
	n := 0
	for _, it := range items {
		if it.GetMessage() == nil {
			n++
		}
	}
	if n == 0 {
		return items, nil
	}
	real = make([]T, 0, len(items)-n)
	givenUp = make([]uint64, 0, n)
	for _, it := range items {
		if it.GetMessage() == nil {
			givenUp = append(givenUp, it.GetId())
		} else {
			real = append(real, it)
		}
	}
	return real, givenUp
}
