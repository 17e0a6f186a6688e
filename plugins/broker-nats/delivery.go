package main

import (
	"fmt"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/metadata"
)

// Settlement states of a delivery.
const (
	statePending int32 = iota
	stateAcked
	stateNacked
	stateExpired // the handler returned without settling: counts as a Nack
)

// delivery is one attempt of one message at one subscription. In JetStream mode
// settling it acks or naks the stream message; in core mode there is nothing to
// tell the server and a Nack loses the message.
type delivery struct {
	topic   string
	msg     broker.Message
	md      metadata.MD // the header with canonical keys: the handler's incoming metadata
	attempt int
	js      jetstream.Msg // nil in core mode
	state   atomic.Int32
}

var _ broker.Delivery = (*delivery)(nil)

// Topic is the concrete subject the message was published to.
func (d *delivery) Topic() string { return d.topic }

// Message is this delivery's own copy of the message.
func (d *delivery) Message() *broker.Message { return &d.msg }

// Attempt is the JetStream delivery count, from 1; always 1 in core mode.
func (d *delivery) Attempt() int { return d.attempt }

// Ack confirms the message. Acking twice is fine; acking after a Nack, or after
// the handler returned without settling, fails with broker.ErrAlreadySettled.
func (d *delivery) Ack() error { return d.settle(stateAcked, "ack") }

// Nack rejects the message: JetStream redelivers it at once (to any member, for
// a queue group); core NATS cannot, so the message is lost. Nacking twice is
// fine; nacking after an Ack fails with broker.ErrAlreadySettled.
func (d *delivery) Nack() error { return d.settle(stateNacked, "nack") }

// settle moves a pending delivery to want and tells JetStream; the first
// settlement wins.
func (d *delivery) settle(want int32, verb string) error {
	if d.state.CompareAndSwap(statePending, want) {
		return d.tell(want, verb)
	}
	switch cur := d.state.Load(); cur {
	case want:
		return nil
	case stateAcked:
		return fmt.Errorf("broker nats: %s message on %q (attempt %d): %w: it was acked", verb, d.topic, d.attempt, broker.ErrAlreadySettled)
	case stateNacked:
		return fmt.Errorf("broker nats: %s message on %q (attempt %d): %w: it was nacked", verb, d.topic, d.attempt, broker.ErrAlreadySettled)
	default:
		return fmt.Errorf("broker nats: %s message on %q (attempt %d): %w: its handler returned without Ack, which counts as a Nack; settle before returning",
			verb, d.topic, d.attempt, broker.ErrAlreadySettled)
	}
}

// tell sends the settlement to JetStream; core mode has nobody to tell.
func (d *delivery) tell(state int32, verb string) error {
	if d.js == nil {
		return nil
	}
	var err error
	if state == stateAcked {
		err = d.js.Ack()
	} else {
		err = d.js.Nak()
	}
	if err != nil {
		return fmt.Errorf("broker nats: %s message on %q (attempt %d): %w", verb, d.topic, d.attempt, err)
	}
	return nil
}

// finish settles the delivery once its handler returned and reports whether it
// ended nacked. With autoAck a nil error acks and an error nacks; either way an
// explicit Ack or Nack made by the handler wins, and a delivery still pending
// without autoAck expires, which counts as a Nack.
func (d *delivery) finish(autoAck bool, err error) (nacked bool) {
	switch {
	case autoAck && err == nil:
		_ = d.settle(stateAcked, "ack")
	case autoAck:
		_ = d.settle(stateNacked, "nack")
	case d.state.CompareAndSwap(statePending, stateExpired):
		_ = d.tell(stateExpired, "nack")
	}
	return d.state.Load() != stateAcked
}
