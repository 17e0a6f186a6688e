package broker

import "errors"

// Sentinel errors. Brokers wrap them with the topic, the subscription and the fix,
// so callers test with errors.Is and people read the wrapped text.
var (
	// ErrClosed is returned by Publish and Subscribe once the broker is closed.
	ErrClosed = errors.New("broker is closed")
	// ErrInvalidTopic is returned for a topic or subscription pattern that breaks the
	// topic rules (see ValidateTopic and ValidatePattern).
	ErrInvalidTopic = errors.New("invalid topic")
	// ErrSlowConsumer is returned by Publish when a subscriber's buffer is full: the
	// subscriber did not get the message; the others did.
	ErrSlowConsumer = errors.New("slow consumer")
	// ErrMaxAttempts is reported through the error hook when a message was nacked
	// on its last allowed attempt and is dropped.
	ErrMaxAttempts = errors.New("max delivery attempts reached")
	// ErrAlreadySettled is returned by Ack or Nack on a delivery that was already
	// settled the other way, or that expired when its handler returned.
	ErrAlreadySettled = errors.New("delivery already settled")
)
