// Package broker defines asynchronous messaging: the Broker contract and the built-in
// memory broker with wildcards, queue groups and explicit acknowledgement.
package broker

import "context"

// Broker publishes messages to topics and delivers them to subscribers.
//
// Topics are dot-separated tokens. In a subscription, "*" matches exactly one token
// and ">" (last token only) matches one or more remaining tokens.
type Broker interface {
	// Name is the broker's short name ("memory", "nats").
	Name() string
	Publish(ctx context.Context, topic string, msg *Message) error
	Subscribe(ctx context.Context, topic string, h Handler, opts ...SubscribeOption) (Subscription, error)
	// Close stops every subscription and refuses further publishes.
	Close() error
}

// Message is what travels: headers (metadata, W3C trace context) and a body.
type Message struct {
	Header map[string]string
	Body   []byte
}

// Handler processes one delivery. With AutoAck, a nil return acks and an error
// nacks; without it the handler calls Ack or Nack itself, and a delivery settled
// neither way when the handler returns counts as nacked. An explicit Ack or Nack
// always wins over the return value.
type Handler func(ctx context.Context, d Delivery) error

// Delivery is one message handed to one subscriber.
type Delivery interface {
	Topic() string
	Message() *Message
	// Attempt counts deliveries of this message to this subscription, from 1.
	Attempt() int
	// Ack confirms the message; it will not be delivered again.
	Ack() error
	// Nack rejects it; it is redelivered (to any member, for a queue group).
	Nack() error
}

// Subscription is a live subscription.
type Subscription interface {
	Topic() string
	// Queue is the queue group name, "" for a plain subscription.
	Queue() string
	Unsubscribe() error
}

// Detacher is a Subscription that can stop delivering while keeping what it
// holds on the broker's server for its SubscriptionID (a durable consumer), so
// that a subscription made again under that id resumes it. A broker plugin
// detaches when the host's Subscribe stream breaks, because the host then
// subscribes again; it unsubscribes when the host ends the stream.
type Detacher interface {
	Detach() error
}

// SubscribeOptions tune a subscription.
type SubscribeOptions struct {
	// Queue puts the subscriber in a group: each message goes to one member.
	Queue string
	// AutoAck acks when the handler returns nil and nacks when it returns an error.
	AutoAck bool
	// Buffer bounds undelivered messages held for the subscriber (0: default).
	Buffer int
	// MaxAttempts bounds deliveries of one message (0: default); past it the message
	// is dropped and reported through the broker's error hook.
	MaxAttempts int
	// Concurrency is how many handlers of this subscription may run at once
	// (0: one, which keeps deliveries in order; more trades order for throughput).
	Concurrency int
	// SubscriptionID names the subscription across re-subscriptions, such as the
	// host re-opening it after a broker plugin restarted: a broker that keeps
	// per-subscriber state on its server (a durable consumer) resumes the state
	// of that id, so messages stored meanwhile still arrive. Each live
	// subscription needs its own (the host's plugin adapter refuses one in use);
	// empty means a fresh identity, and that adapter picks a random one.
	// In-process brokers ignore it.
	SubscriptionID string
}

// SubscribeOption sets a SubscribeOptions field.
type SubscribeOption func(*SubscribeOptions)

// Queue joins the queue group name.
func Queue(name string) SubscribeOption { return func(o *SubscribeOptions) { o.Queue = name } }

// AutoAck turns automatic acknowledgement on or off (default on).
func AutoAck(on bool) SubscribeOption { return func(o *SubscribeOptions) { o.AutoAck = on } }

// Buffer sets how many undelivered messages the subscription may hold.
func Buffer(n int) SubscribeOption { return func(o *SubscribeOptions) { o.Buffer = n } }

// MaxAttempts sets how many times one message may be delivered.
func MaxAttempts(n int) SubscribeOption { return func(o *SubscribeOptions) { o.MaxAttempts = n } }

// Concurrency sets how many handlers of the subscription may run at once.
func Concurrency(n int) SubscribeOption { return func(o *SubscribeOptions) { o.Concurrency = n } }

// SubscriptionID sets the identity a re-subscription resumes (see
// SubscribeOptions.SubscriptionID).
func SubscriptionID(id string) SubscribeOption {
	return func(o *SubscribeOptions) { o.SubscriptionID = id }
}

// NewSubscribeOptions applies opts over the defaults (AutoAck on).
func NewSubscribeOptions(opts ...SubscribeOption) SubscribeOptions {
	o := SubscribeOptions{AutoAck: true}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}
