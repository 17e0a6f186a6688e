package broker

import (
	"context"
	"fmt"

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

// delivery is one attempt of one message at one subscription. Its Message is a
// private copy (header and body), so a handler cannot change another's view.
type delivery struct {
	msg     Message
	md      metadata.MD // the header with canonical keys: the handler's incoming metadata
	topic   string
	attempt int
	settled Settlement
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
func (d *delivery) Ack() error { return d.settled.Settle(true, nil, d.what("ack")) }

// Nack rejects the message so it is redelivered. Nacking twice is fine; nacking
// after an Ack fails with ErrAlreadySettled.
func (d *delivery) Nack() error { return d.settled.Settle(false, nil, d.what("nack")) }

func (d *delivery) what(verb string) string {
	return fmt.Sprintf("broker: %s message on %q (attempt %d)", verb, d.topic, d.attempt)
}

// finish settles the delivery once its handler returned and reports whether the
// message was acked (see Settlement.Finish).
func (d *delivery) finish(autoAck bool, err error) bool {
	return d.settled.Finish(autoAck, err, nil)
}
