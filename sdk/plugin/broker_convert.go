package plugin

import (
	"math"

	"github.com/microhost/micro/sdk/broker"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
)

// Conversions between broker messages and protocol v1 messages. They share the
// header map and body instead of copying them: a protocol message only lives for
// the call that marshals it, or was freshly unmarshalled and is dropped after.

// brokerMessageToProto wraps a broker.Message for the wire (nil: an empty message).
func brokerMessageToProto(m *broker.Message) *pluginv1.Message {
	if m == nil {
		return &pluginv1.Message{}
	}
	return &pluginv1.Message{Header: m.Header, Body: m.Body}
}

// brokerMessageFromProto unwraps a protocol message (nil: an empty message).
func brokerMessageFromProto(p *pluginv1.Message) *broker.Message {
	return &broker.Message{Header: p.GetHeader(), Body: p.GetBody()}
}

// subscribeRequest builds the request that opens a subscription on the plugin.
func subscribeRequest(topic string, o broker.SubscribeOptions) *pluginv1.SubscribeRequest {
	return &pluginv1.SubscribeRequest{
		Topic:          topic,
		Queue:          o.Queue,
		Buffer:         saturatedInt32(o.Buffer),
		MaxAttempts:    saturatedInt32(o.MaxAttempts),
		Concurrency:    saturatedInt32(o.Concurrency),
		SubscriptionId: o.SubscriptionID,
	}
}

// subscribeOptions turns a SubscribeRequest into the options the plugin subscribes
// with: always without AutoAck, since the host settles every delivery.
func subscribeOptions(req *pluginv1.SubscribeRequest) []broker.SubscribeOption {
	opts := []broker.SubscribeOption{
		broker.AutoAck(false),
		broker.Buffer(int(req.GetBuffer())),
		broker.MaxAttempts(int(req.GetMaxAttempts())),
		broker.Concurrency(int(req.GetConcurrency())),
	}
	if q := req.GetQueue(); q != "" {
		opts = append(opts, broker.Queue(q))
	}
	if id := req.GetSubscriptionId(); id != "" { // older hosts send none
		opts = append(opts, broker.SubscriptionID(id))
	}
	return opts
}

// saturatedInt32 narrows n for the wire, saturating at the int32 bounds.
func saturatedInt32(n int) int32 {
	return int32(max(min(n, math.MaxInt32), math.MinInt32))
}
