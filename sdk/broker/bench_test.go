package broker_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/microhost/micro/sdk/broker"
)

// batch is how many messages both benchmarks send before waiting for the
// consumer to catch up; it stays below the subscription buffer so Publish never
// meets a full buffer, and the channel reference is sized the same.
const batch = 256

// benchBody is the small message body both benchmarks carry.
var benchBody = []byte(`{"id":"o-1","total":42}`)

// BenchmarkPublish measures one Publish and its delivery to one subscriber's
// handler. Compare with BenchmarkChannel, the bare-channel reference.
func BenchmarkPublish(b *testing.B) {
	m := broker.NewMemory()
	b.Cleanup(func() { _ = m.Close() })
	var received, target atomic.Int64
	caught := make(chan struct{}, 1)
	_, err := m.Subscribe(context.Background(), "bench.orders", func(context.Context, broker.Delivery) error {
		if received.Add(1) == target.Load() {
			caught <- struct{}{}
		}
		return nil
	}, broker.Buffer(4*batch))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	msg := &broker.Message{Header: map[string]string{"Content-Type": "application/json"}, Body: benchBody}
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		k := min(batch, b.N-sent)
		target.Store(int64(sent + k))
		for range k {
			if err := m.Publish(ctx, "bench.orders", msg); err != nil {
				b.Fatal(err)
			}
		}
		<-caught
		sent += k
	}
}

// BenchmarkChannel is the reference: the same message through a buffered Go
// channel to a goroutine, with the same batching.
func BenchmarkChannel(b *testing.B) {
	ch := make(chan *broker.Message, 4*batch)
	var received, target atomic.Int64
	caught := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range ch {
			if received.Add(1) == target.Load() {
				caught <- struct{}{}
			}
		}
	}()
	b.Cleanup(func() { close(ch); <-done })
	msg := &broker.Message{Header: map[string]string{"Content-Type": "application/json"}, Body: benchBody}
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		k := min(batch, b.N-sent)
		target.Store(int64(sent + k))
		for range k {
			ch <- msg
		}
		<-caught
		sent += k
	}
}

// BenchmarkMatch measures topic matching alone: no allocation expected.
func BenchmarkMatch(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		broker.Match("orders.*.eu.>", "orders.created.eu.fr.paris")
	}
}
