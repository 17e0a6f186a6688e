package broker

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/microhost/micro/sdk/metadata"
)

// payload is the pristine copy of a published message. It is shared by every
// subscriber of one publish and never handed to a handler, so redeliveries see
// the message as it was published whatever a handler did to its own copy.
type payload struct {
	topic     string
	header    []field // as published, plus injected trace context; a slice is one allocation
	body      []byte
	canonical bool // every header key is a canonical metadata name
}

// field is one header entry.
type field struct{ key, value string }

// envelope is one message queued for one subscription, with its attempt number.
type envelope struct {
	p       *payload
	attempt int
}

// newPayload copies msg so the publisher may reuse it once Publish returns, and
// copies W3C trace context from ctx's outgoing metadata into the header when the
// header carries no Traceparent of its own.
func newPayload(ctx context.Context, topic string, msg *Message) *payload {
	p := &payload{topic: topic, canonical: true}
	if len(msg.Body) > 0 {
		p.body = append([]byte(nil), msg.Body...)
	}
	trace := metadata.MissingTraceContext(ctx, msg.Header)
	n := len(msg.Header) + len(trace)
	if n == 0 {
		return p
	}
	p.header = make([]field, 0, n)
	for k, v := range msg.Header {
		p.header = append(p.header, field{k, v})
		p.canonical = p.canonical && metadata.Canonical(k) == k
	}
	for _, k := range [...]string{metadata.TraceParent, metadata.TraceState, metadata.Baggage} {
		if v, ok := trace[k]; ok {
			p.header = append(p.header, field{k, v})
		}
	}
	return p
}

// Settlement states of a delivery.
const (
	statePending int32 = iota
	stateAcked
	stateNacked
	stateExpired // the handler returned without settling: counts as a Nack
)

// delivery is one attempt of one message at one subscription. Its Message is a
// private copy (header and body), so a handler cannot change another's view.
type delivery struct {
	msg     Message
	md      metadata.MD // the header with canonical keys: the handler's incoming metadata
	topic   string
	attempt int
	state   atomic.Int32
}

// newDelivery copies the envelope's payload for one handler call. When the
// header's keys are already canonical, the copy doubles as the incoming metadata.
func newDelivery(e envelope) *delivery {
	d := &delivery{topic: e.p.topic, attempt: e.attempt}
	if e.p.body != nil {
		d.msg.Body = append([]byte(nil), e.p.body...)
	}
	if len(e.p.header) == 0 {
		return d
	}
	d.msg.Header = make(map[string]string, len(e.p.header))
	for _, f := range e.p.header {
		d.msg.Header[f.key] = f.value
	}
	if e.p.canonical {
		d.md = d.msg.Header
		return d
	}
	d.md = make(metadata.MD, len(e.p.header))
	for _, f := range e.p.header {
		d.md[metadata.Canonical(f.key)] = f.value
	}
	return d
}

// Topic is the concrete topic the message was published to.
func (d *delivery) Topic() string { return d.topic }

// Message is this delivery's own copy of the message.
func (d *delivery) Message() *Message { return &d.msg }

// Attempt counts deliveries of this message to this subscription, from 1.
func (d *delivery) Attempt() int { return d.attempt }

// Ack confirms the message. Acking twice is fine; acking after a Nack, or after
// the handler returned without settling, fails with ErrAlreadySettled.
func (d *delivery) Ack() error { return d.settle(stateAcked, "ack") }

// Nack rejects the message so it is redelivered. Nacking twice is fine; nacking
// after an Ack fails with ErrAlreadySettled.
func (d *delivery) Nack() error { return d.settle(stateNacked, "nack") }

// settle moves a pending delivery to want; the first settlement wins.
func (d *delivery) settle(want int32, verb string) error {
	if d.state.CompareAndSwap(statePending, want) {
		return nil
	}
	switch cur := d.state.Load(); cur {
	case want:
		return nil
	case stateAcked:
		return fmt.Errorf("broker: %s message on %q (attempt %d): %w: it was acked", verb, d.topic, d.attempt, ErrAlreadySettled)
	case stateNacked:
		return fmt.Errorf("broker: %s message on %q (attempt %d): %w: it was nacked", verb, d.topic, d.attempt, ErrAlreadySettled)
	default:
		return fmt.Errorf("broker: %s message on %q (attempt %d): %w: its handler returned without Ack, which counts as a Nack; settle before returning",
			verb, d.topic, d.attempt, ErrAlreadySettled)
	}
}

// finish settles the delivery once its handler returned and reports whether the
// message was acked. With autoAck a nil error acks and an error nacks; either
// way an explicit Ack or Nack made by the handler wins, and a delivery still
// pending without autoAck expires, which counts as a Nack.
func (d *delivery) finish(autoAck bool, err error) bool {
	switch {
	case autoAck && err == nil:
		d.state.CompareAndSwap(statePending, stateAcked)
	case autoAck:
		d.state.CompareAndSwap(statePending, stateNacked)
	default:
		d.state.CompareAndSwap(statePending, stateExpired)
	}
	return d.state.Load() == stateAcked
}
