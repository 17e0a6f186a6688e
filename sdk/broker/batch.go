package broker

import "context"

// Publication is one message of a batch and the topic it goes to.
type Publication struct {
	Topic   string
	Message *Message
}

// BatchPublisher is implemented by brokers that publish many messages at once
// faster than one by one, for example by pipelining the server's
// acknowledgements. The plugin boundary hands it the batches it receives.
//
// PublishBatch starts publishing every message of batch, after those of any
// batch started before it and keeping their order within a topic, and returns a
// function that waits for the outcomes: one error per message (nil when it was
// published), in batch's order. Several batches may be waited for at once; ctx
// stays valid until wait returns.
type BatchPublisher interface {
	PublishBatch(ctx context.Context, batch []Publication) (wait func() []error)
}
