package main

import (
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/metadata"
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
	naks    *heldNaks     // where a JetStream nak goes
	seq     uint64        // stream sequence, when the subscription tracks its progress; else 0
	term    bool          // a nack terminates the message: its attempts are used up
	settled broker.Settlement
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
func (d *delivery) Ack() error { return d.settled.Settle(true, d.tell, d.what("ack")) }

// Nack rejects the message: JetStream redelivers it at once (to any member, for
// a queue group); core NATS cannot, so the message is lost. Nacking twice is
// fine; nacking after an Ack fails with broker.ErrAlreadySettled.
func (d *delivery) Nack() error { return d.settled.Settle(false, d.tell, d.what("nack")) }

func (d *delivery) what(verb string) string {
	return fmt.Sprintf("broker nats: %s message on %q (attempt %d)", verb, d.topic, d.attempt)
}

// tell sends the settlement to JetStream; core mode has nobody to tell.
func (d *delivery) tell(ack bool) error {
	if d.js == nil {
		return nil
	}
	var err error
	verb := "ack"
	if ack {
		err = d.js.Ack()
	} else if d.term {
		verb = "terminate"
		err = d.js.Term()
	} else {
		verb = "nack"
		err = d.naks.nak(d.js)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", d.what(verb), err)
	}
	return nil
}

// finish settles the delivery once its handler returned and reports whether it
// ended nacked (see broker.Settlement.Finish).
func (d *delivery) finish(autoAck bool, err error) (nacked bool) {
	return !d.settled.Finish(autoAck, err, d.tell)
}
