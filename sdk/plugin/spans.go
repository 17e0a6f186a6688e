package plugin

import (
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// The plugin boundary carries finished spans as OTLP TracesData, the format
// every OpenTelemetry backend reads, so nothing is lost between the plugin's
// SDK and the host's exporter.

// encodeSpans serializes spans as one OTLP TracesData message, grouped by
// resource and instrumentation scope.
func encodeSpans(spans []sdktrace.ReadOnlySpan) ([]byte, error) {
	data := &tracepb.TracesData{}
	type key struct {
		res   *resource.Resource
		scope instrumentation.Scope
	}
	byRes := map[*resource.Resource]*tracepb.ResourceSpans{}
	byScope := map[key]*tracepb.ScopeSpans{}
	for _, s := range spans {
		res := s.Resource()
		rs := byRes[res]
		if rs == nil {
			rs = &tracepb.ResourceSpans{Resource: &resourcepb.Resource{Attributes: encodeAttrs(res.Attributes())}, SchemaUrl: res.SchemaURL()}
			byRes[res] = rs
			data.ResourceSpans = append(data.ResourceSpans, rs)
		}
		k := key{res, s.InstrumentationScope()}
		ss := byScope[k]
		if ss == nil {
			sc := s.InstrumentationScope()
			ss = &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: sc.Name, Version: sc.Version}, SchemaUrl: sc.SchemaURL}
			byScope[k] = ss
			rs.ScopeSpans = append(rs.ScopeSpans, ss)
		}
		ss.Spans = append(ss.Spans, encodeSpan(s))
	}
	return proto.Marshal(data)
}

func encodeSpan(s sdktrace.ReadOnlySpan) *tracepb.Span {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	out := &tracepb.Span{
		TraceId:                tid[:],
		SpanId:                 sid[:],
		TraceState:             sc.TraceState().String(),
		Flags:                  uint32(sc.TraceFlags()),
		Name:                   s.Name(),
		Kind:                   tracepb.Span_SpanKind(s.SpanKind()),
		StartTimeUnixNano:      uint64(s.StartTime().UnixNano()),
		EndTimeUnixNano:        uint64(s.EndTime().UnixNano()),
		Attributes:             encodeAttrs(s.Attributes()),
		DroppedAttributesCount: uint32(s.DroppedAttributes()),
		DroppedEventsCount:     uint32(s.DroppedEvents()),
		DroppedLinksCount:      uint32(s.DroppedLinks()),
		Status:                 &tracepb.Status{Message: s.Status().Description, Code: statusCode(s.Status().Code)},
	}
	if p := s.Parent(); p.IsValid() {
		psid := p.SpanID()
		out.ParentSpanId = psid[:]
	}
	for _, e := range s.Events() {
		out.Events = append(out.Events, &tracepb.Span_Event{
			TimeUnixNano: uint64(e.Time.UnixNano()), Name: e.Name,
			Attributes: encodeAttrs(e.Attributes), DroppedAttributesCount: uint32(e.DroppedAttributeCount),
		})
	}
	for _, l := range s.Links() {
		ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		out.Links = append(out.Links, &tracepb.Span_Link{
			TraceId: ltid[:], SpanId: lsid[:], TraceState: l.SpanContext.TraceState().String(),
			Attributes: encodeAttrs(l.Attributes), DroppedAttributesCount: uint32(l.DroppedAttributeCount),
			Flags: uint32(l.SpanContext.TraceFlags()),
		})
	}
	return out
}

func statusCode(c codes.Code) tracepb.Status_StatusCode {
	switch c {
	case codes.Ok:
		return tracepb.Status_STATUS_CODE_OK
	case codes.Error:
		return tracepb.Status_STATUS_CODE_ERROR
	}
	return tracepb.Status_STATUS_CODE_UNSET
}

func encodeAttrs(attrs []attribute.KeyValue) []*commonpb.KeyValue {
	out := make([]*commonpb.KeyValue, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, &commonpb.KeyValue{Key: string(a.Key), Value: encodeValue(a.Value)})
	}
	return out
}

func encodeValue(v attribute.Value) *commonpb.AnyValue {
	switch v.Type() {
	case attribute.BOOL:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v.AsBool()}}
	case attribute.INT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v.AsInt64()}}
	case attribute.FLOAT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: v.AsFloat64()}}
	case attribute.BOOLSLICE:
		return array(v.AsBoolSlice(), func(b bool) attribute.Value { return attribute.BoolValue(b) })
	case attribute.INT64SLICE:
		return array(v.AsInt64Slice(), func(i int64) attribute.Value { return attribute.Int64Value(i) })
	case attribute.FLOAT64SLICE:
		return array(v.AsFloat64Slice(), func(f float64) attribute.Value { return attribute.Float64Value(f) })
	case attribute.STRINGSLICE:
		return array(v.AsStringSlice(), func(s string) attribute.Value { return attribute.StringValue(s) })
	}
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v.Emit()}}
}

func array[T any](vs []T, conv func(T) attribute.Value) *commonpb.AnyValue {
	arr := &commonpb.ArrayValue{Values: make([]*commonpb.AnyValue, len(vs))}
	for i, v := range vs {
		arr.Values[i] = encodeValue(conv(v))
	}
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: arr}}
}

// decodeSpans reads what encodeSpans wrote back into spans the host's span
// processors and exporters take.
func decodeSpans(b []byte) ([]sdktrace.ReadOnlySpan, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var data tracepb.TracesData
	if err := proto.Unmarshal(b, &data); err != nil {
		return nil, fmt.Errorf("decoding OTLP spans: %w", err)
	}
	var out []sdktrace.ReadOnlySpan
	for _, rs := range data.ResourceSpans {
		res := resource.NewWithAttributes(rs.SchemaUrl, decodeAttrs(rs.GetResource().GetAttributes())...)
		for _, ss := range rs.ScopeSpans {
			scope := instrumentation.Scope{Name: ss.GetScope().GetName(), Version: ss.GetScope().GetVersion(), SchemaURL: ss.SchemaUrl}
			for _, s := range ss.Spans {
				stub, err := decodeSpan(s)
				if err != nil {
					return nil, err
				}
				stub.Resource, stub.InstrumentationScope = res, scope
				out = append(out, stub.Snapshot())
			}
		}
	}
	return out, nil
}

func decodeSpan(s *tracepb.Span) (tracetest.SpanStub, error) {
	var tid trace.TraceID
	var sid, psid trace.SpanID
	if len(s.TraceId) != len(tid) || len(s.SpanId) != len(sid) {
		return tracetest.SpanStub{}, fmt.Errorf("decoding OTLP spans: span %q has a bad trace or span id", s.Name)
	}
	copy(tid[:], s.TraceId)
	copy(sid[:], s.SpanId)
	ts, _ := trace.ParseTraceState(s.TraceState)
	stub := tracetest.SpanStub{
		Name:              s.Name,
		SpanContext:       trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(s.Flags), TraceState: ts, Remote: false}),
		SpanKind:          trace.SpanKind(s.Kind),
		StartTime:         time.Unix(0, int64(s.StartTimeUnixNano)),
		EndTime:           time.Unix(0, int64(s.EndTimeUnixNano)),
		Attributes:        decodeAttrs(s.Attributes),
		DroppedAttributes: int(s.DroppedAttributesCount),
		DroppedEvents:     int(s.DroppedEventsCount),
		DroppedLinks:      int(s.DroppedLinksCount),
	}
	if len(s.ParentSpanId) == len(psid) {
		copy(psid[:], s.ParentSpanId)
		stub.Parent = trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: psid, TraceFlags: trace.TraceFlags(s.Flags), Remote: true})
	}
	switch s.GetStatus().GetCode() {
	case tracepb.Status_STATUS_CODE_OK:
		stub.Status = sdktrace.Status{Code: codes.Ok}
	case tracepb.Status_STATUS_CODE_ERROR:
		stub.Status = sdktrace.Status{Code: codes.Error, Description: s.GetStatus().GetMessage()}
	}
	for _, e := range s.Events {
		stub.Events = append(stub.Events, sdktrace.Event{Name: e.Name, Time: time.Unix(0, int64(e.TimeUnixNano)),
			Attributes: decodeAttrs(e.Attributes), DroppedAttributeCount: int(e.DroppedAttributesCount)})
	}
	for _, l := range s.Links {
		var ltid trace.TraceID
		var lsid trace.SpanID
		copy(ltid[:], l.TraceId)
		copy(lsid[:], l.SpanId)
		lts, _ := trace.ParseTraceState(l.TraceState)
		stub.Links = append(stub.Links, sdktrace.Link{
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: ltid, SpanID: lsid, TraceState: lts, TraceFlags: trace.TraceFlags(l.Flags), Remote: true}),
			Attributes:  decodeAttrs(l.Attributes), DroppedAttributeCount: int(l.DroppedAttributesCount),
		})
	}
	return stub, nil
}

func decodeAttrs(kvs []*commonpb.KeyValue) []attribute.KeyValue {
	out := make([]attribute.KeyValue, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, attribute.KeyValue{Key: attribute.Key(kv.Key), Value: decodeValue(kv.Value)})
	}
	return out
}

func decodeValue(v *commonpb.AnyValue) attribute.Value {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_BoolValue:
		return attribute.BoolValue(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return attribute.Int64Value(x.IntValue)
	case *commonpb.AnyValue_DoubleValue:
		return attribute.Float64Value(x.DoubleValue)
	case *commonpb.AnyValue_StringValue:
		return attribute.StringValue(x.StringValue)
	case *commonpb.AnyValue_ArrayValue:
		return decodeArray(x.ArrayValue.GetValues())
	}
	return attribute.StringValue("")
}

// decodeArray rebuilds a homogeneous slice attribute; mixed arrays, which the
// SDK never writes, become their strings.
func decodeArray(vs []*commonpb.AnyValue) attribute.Value {
	if len(vs) == 0 {
		return attribute.StringSliceValue(nil)
	}
	switch vs[0].GetValue().(type) {
	case *commonpb.AnyValue_BoolValue:
		out := make([]bool, len(vs))
		for i, v := range vs {
			out[i] = v.GetBoolValue()
		}
		return attribute.BoolSliceValue(out)
	case *commonpb.AnyValue_IntValue:
		out := make([]int64, len(vs))
		for i, v := range vs {
			out[i] = v.GetIntValue()
		}
		return attribute.Int64SliceValue(out)
	case *commonpb.AnyValue_DoubleValue:
		out := make([]float64, len(vs))
		for i, v := range vs {
			out[i] = v.GetDoubleValue()
		}
		return attribute.Float64SliceValue(out)
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = decodeValue(v).Emit()
	}
	return attribute.StringSliceValue(out)
}
