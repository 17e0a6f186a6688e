package broker

import (
	"fmt"
	"sync/atomic"
)

// Settlement is the once-only Ack or Nack of one delivery, for Delivery
// implementations: the first settlement wins, and a later different one fails
// with ErrAlreadySettled saying what happened. The zero value is pending.
type Settlement struct {
	state atomic.Int32
}

// The states of a Settlement.
const (
	settlePending int32 = iota
	settleAcked
	settleNacked
	settleExpired // the handler returned without settling: counts as a Nack
)

// Settle acks (ack true) or nacks. When this call settles the delivery, tell
// passes the outcome on (to a server, a stream; nil: nobody to tell) and its
// error is returned. Settling the same way twice is fine. what names the
// delivery in errors, e.g. `broker nats: ack message on "orders" (attempt 2)`.
func (s *Settlement) Settle(ack bool, tell func(ack bool) error, what string) error {
	want := settleNacked
	if ack {
		want = settleAcked
	}
	if s.state.CompareAndSwap(settlePending, want) {
		if tell == nil {
			return nil
		}
		return tell(ack)
	}
	switch s.state.Load() {
	case want:
		return nil
	case settleAcked:
		return fmt.Errorf("%s: %w: it was acked", what, ErrAlreadySettled)
	case settleNacked:
		return fmt.Errorf("%s: %w: it was nacked", what, ErrAlreadySettled)
	default:
		return fmt.Errorf("%s: %w: its handler returned without Ack, which counts as a Nack; settle before returning", what, ErrAlreadySettled)
	}
}

// Finish settles the delivery once its handler returned and reports whether it
// ended acked. With autoAck a nil error acks and an error nacks; without it a
// pending delivery expires, which counts as a Nack. An explicit Ack or Nack the
// handler made wins either way. tell is called as Settle calls it, when Finish
// is what settled the delivery.
func (s *Settlement) Finish(autoAck bool, err error, tell func(ack bool) error) (acked bool) {
	want := settleExpired
	if autoAck {
		want = settleNacked
		if err == nil {
			want = settleAcked
		}
	}
	if s.state.CompareAndSwap(settlePending, want) && tell != nil {
		_ = tell(want == settleAcked) // the handler is done: nobody to return the error to
	}
	return s.state.Load() == settleAcked
}

// Expired reports whether the delivery's handler returned without settling it
// (and without AutoAck), which counts as a Nack.
func (s *Settlement) Expired() bool { return s.state.Load() == settleExpired }
