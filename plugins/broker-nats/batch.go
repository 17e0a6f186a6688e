package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/microhost/micro/sdk/broker"
)

// PublishBatch publishes a batch the host sent across the plugin boundary. In
// core mode the messages go one after another into the connection's buffer and
// wait has nothing left to do; in JetStream mode they are all sent at once and
// wait collects the stream's acknowledgements, so batches overlap and none costs
// a server round trip per message. The connection keeps the order messages were
// sent in, so order within a topic holds.
func (b *natsBroker) PublishBatch(ctx context.Context, batch []broker.Publication) (wait func() []error) {
	errs := make([]error, len(batch))
	done := func() []error { return errs }
	if len(batch) == 0 {
		return done
	}
	nc, js, o, err := b.state("publish", batch[0].Topic)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return done
	}
	if js == nil {
		for i, p := range batch {
			if errs[i] = checkPublication(p); errs[i] != nil {
				continue
			}
			m := &nats.Msg{Subject: p.Topic, Header: toNATSHeader(ctx, p.Message.Header), Data: p.Message.Body}
			if err := nc.PublishMsg(m); err != nil {
				errs[i] = fmt.Errorf("broker nats: publish %q: %w", p.Topic, err)
			}
		}
		return done
	}

	acks := make([]jetstream.PubAckFuture, len(batch))
	for i, p := range batch {
		if errs[i] = checkPublication(p); errs[i] != nil {
			continue
		}
		m := &nats.Msg{Subject: p.Topic, Header: toNATSHeader(ctx, p.Message.Header), Data: p.Message.Body}
		if acks[i], err = js.PublishMsgAsync(m); err != nil {
			errs[i] = jetStreamPublishError(p.Topic, o, err)
		}
	}
	return func() []error {
		timeout := time.NewTimer(o.timeout)
		defer timeout.Stop()
		late := func(topic string) error {
			return fmt.Errorf("broker nats: publish %q: no acknowledgement from the stream within %s (timeout_ms): %w", topic, o.timeout, context.DeadlineExceeded)
		}
		for i, ack := range acks {
			if ack == nil {
				continue
			}
			select {
			case <-ack.Ok():
			case err := <-ack.Err():
				if errors.Is(err, jetstream.ErrAsyncPublishTimeout) {
					errs[i] = late(batch[i].Topic)
				} else {
					errs[i] = jetStreamPublishError(batch[i].Topic, o, err)
				}
			case <-ctx.Done():
				errs[i] = fmt.Errorf("broker nats: publish %q: waiting for the stream's acknowledgement: %w", batch[i].Topic, context.Cause(ctx))
			case <-timeout.C:
				errs[i] = late(batch[i].Topic)
				timeout.Reset(0) // the rest are as late
			}
		}
		return errs
	}
}

// checkPublication refuses what Publish would refuse before sending.
func checkPublication(p broker.Publication) error {
	if err := broker.ValidateTopic(p.Topic); err != nil {
		return err
	}
	if p.Message == nil {
		return fmt.Errorf("broker nats: publish %q: the message is nil", p.Topic)
	}
	return nil
}
