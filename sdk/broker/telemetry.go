package broker

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/telemetry"
)

// Instrument returns b recording a PRODUCER span per publish, whose trace
// context travels in the message header, and a CONSUMER span per delivery,
// child of the producer's, plus the micro_broker_* metrics. With a nil t it
// returns b.
func Instrument(b Broker, t *telemetry.Telemetry) Broker {
	if t == nil {
		return b
	}
	ib := &instrumented{Broker: b, tel: t}
	if reg := t.Registerer(); reg != nil {
		pub := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "micro_broker_published_total",
			Help: "Messages published, by broker and result (ok, error).",
		}, []string{"broker", "result"})
		del := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "micro_broker_deliveries_total",
			Help: "Deliveries handled, by broker and result (ok, error).",
		}, []string{"broker", "result"})
		dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "micro_broker_handle_duration_seconds",
			Help:    "Time subscribers took to handle a delivery, by broker.",
			Buckets: telemetry.DurationBuckets,
		}, []string{"broker"})
		var err1, err2, err3 error
		pub, err1 = telemetry.Register(reg, pub)
		del, err2 = telemetry.Register(reg, del)
		dur, err3 = telemetry.Register(reg, dur)
		if err1 == nil && err2 == nil && err3 == nil {
			name := b.Name()
			ib.metrics = &brokerMetrics{
				publishedOK:  pub.WithLabelValues(name, "ok"),
				publishedErr: pub.WithLabelValues(name, "error"),
				deliveredOK:  del.WithLabelValues(name, "ok"),
				deliveredErr: del.WithLabelValues(name, "error"),
				handled:      dur.WithLabelValues(name),
			}
		} else {
			t.Logger().Warn("broker metrics are off", "error", firstError(err1, err2, err3).Error())
		}
	}
	if _, ok := b.(BatchPublisher); ok {
		return &instrumentedBatch{ib}
	}
	return ib
}

type instrumented struct {
	Broker
	tel     *telemetry.Telemetry
	metrics *brokerMetrics // nil without a registerer
}

// brokerMetrics are the broker's series, resolved once: a message costs no
// label lookup.
type brokerMetrics struct {
	publishedOK, publishedErr prometheus.Counter
	deliveredOK, deliveredErr prometheus.Counter
	handled                   prometheus.Observer
}

func (b *instrumented) attrs(topic, op string) trace.SpanStartOption {
	return trace.WithAttributes(
		semconv.MessagingSystemKey.String(b.Name()),
		semconv.MessagingDestinationNameKey.String(topic),
		semconv.MessagingOperationTypeKey.String(op),
	)
}

// Publish sends msg in a PRODUCER span whose trace context a copy of the
// header carries; msg itself is never changed. A message that carries trace
// context keeps it, and without a span in ctx the publish continues that
// trace, as when a broker plugin publishes what the host handed it: the
// consumer's span is then the child of the first producer's.
func (b *instrumented) Publish(ctx context.Context, topic string, msg *Message) error {
	if msg == nil {
		return b.Broker.Publish(ctx, topic, msg)
	}
	ctx, span, traced := b.startPublish(ctx, topic, msg)
	err := b.Broker.Publish(ctx, topic, traced)
	b.endPublish(span, err)
	return err
}

func (b *instrumented) startPublish(ctx context.Context, topic string, msg *Message) (context.Context, trace.Span, *Message) {
	carried := telemetry.HeaderCarrier(msg.Header).Get(metadata.TraceParent) != ""
	if carried && !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = b.tel.Extract(ctx, msg.Header)
	}
	if !b.tel.Traces(ctx) {
		return ctx, noSpan, msg // not traced here: no span, the message as it is
	}
	parent := trace.SpanContextFromContext(ctx).IsValid()
	ctx, span := b.tel.Tracer().Start(ctx, "publish "+topic, trace.WithSpanKind(trace.SpanKindProducer), b.attrs(topic, "send"))
	if carried || (!parent && !span.SpanContext().IsSampled()) {
		// The message keeps the trace context it carries; and a new trace the
		// sampler dropped is not worth a header on every message.
		return ctx, span, msg
	}
	header := make(map[string]string, len(msg.Header)+3)
	for k, v := range msg.Header {
		header[k] = v
	}
	b.tel.Inject(ctx, header)
	return ctx, span, &Message{Header: header, Body: msg.Body}
}

// noSpan stands in where nothing is traced; ending it does nothing.
var noSpan = trace.SpanFromContext(context.Background())

func (b *instrumented) endPublish(span trace.Span, err error) {
	endSpan(span, err)
	if m := b.metrics; m != nil {
		if err != nil {
			m.publishedErr.Inc()
		} else {
			m.publishedOK.Inc()
		}
	}
}

// instrumentedBatch keeps a BatchPublisher's batches whole, with a PRODUCER
// span per message.
type instrumentedBatch struct{ *instrumented }

// PublishBatch publishes batch through the inner broker's PublishBatch.
func (b *instrumentedBatch) PublishBatch(ctx context.Context, batch []Publication) (wait func() []error) {
	spans := make([]trace.Span, len(batch))
	traced := make([]Publication, len(batch))
	for i, p := range batch {
		traced[i] = p
		if p.Message != nil {
			_, spans[i], traced[i].Message = b.startPublish(ctx, p.Topic, p.Message)
		}
	}
	inner := b.Broker.(BatchPublisher).PublishBatch(ctx, traced)
	return func() []error {
		errs := inner()
		for i, span := range spans {
			if span == nil {
				continue
			}
			var err error
			if i < len(errs) {
				err = errs[i]
			}
			b.endPublish(span, err)
		}
		return errs
	}
}

// Subscribe wraps h so each delivery is handled in a CONSUMER span whose
// parent is the publisher's span.
func (b *instrumented) Subscribe(ctx context.Context, topic string, h Handler, opts ...SubscribeOption) (Subscription, error) {
	return b.Broker.Subscribe(ctx, topic, func(ctx context.Context, d Delivery) error {
		start := time.Now()
		if m := d.Message(); m != nil {
			ctx = b.tel.Extract(ctx, m.Header)
		}
		var err error
		if b.tel.Traces(ctx) {
			var span trace.Span
			// Named by the subscribed pattern, a bounded set; the concrete topic
			// is an attribute.
			ctx, span = b.tel.Tracer().Start(ctx, "process "+topic, trace.WithSpanKind(trace.SpanKindConsumer),
				b.attrs(d.Topic(), "process"), trace.WithAttributes(attribute.Int("messaging.delivery.attempt", d.Attempt())))
			err = h(ctx, d)
			endSpan(span, err)
		} else {
			err = h(ctx, d)
		}
		if m := b.metrics; m != nil {
			if err != nil {
				m.deliveredErr.Inc()
			} else {
				m.deliveredOK.Inc()
			}
			m.handled.Observe(time.Since(start).Seconds())
		}
		return err
	}, opts...)
}

func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
