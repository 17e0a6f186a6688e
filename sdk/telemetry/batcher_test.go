package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/microhost/micro/sdk/telemetry"
)

// newBatched returns a tracer provider whose spans go through a Batcher with
// cfg to exp, shut down when the test ends.
func newBatched(t *testing.T, exp sdktrace.SpanExporter, cfg telemetry.BatchConfig, opts ...sdktrace.TracerProviderOption) (*sdktrace.TracerProvider, *telemetry.Batcher) {
	t.Helper()
	b := telemetry.NewBatcher(exp, cfg)
	tp := sdktrace.NewTracerProvider(append(opts, sdktrace.WithSpanProcessor(b))...)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, b
}

func endSpans(tp *sdktrace.TracerProvider, prefix string, n int) {
	tr := tp.Tracer("test")
	for i := range n {
		_, s := tr.Start(context.Background(), fmt.Sprintf("%s-%d", prefix, i))
		s.End()
	}
}

func names(spans tracetest.SpanStubs) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBatcherForceFlushExportsInOrder(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp, b := newBatched(t, exp, telemetry.BatchConfig{Interval: time.Hour, MaxBatch: 4})
	endSpans(tp, "s", 10)
	if err := b.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(names(exp.GetSpans()), ",")
	if want := "s-0,s-1,s-2,s-3,s-4,s-5,s-6,s-7,s-8,s-9"; got != want {
		t.Fatalf("exported %s, want %s", got, want)
	}
}

// countingExporter records the size of every batch it is given.
type countingExporter struct {
	mu      sync.Mutex
	batches []int
	err     error
	release chan struct{} // when set, exports wait for it
	entered chan struct{} // when set, told of each export as it starts
	shut    bool
}

func (e *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e.entered != nil {
		e.entered <- struct{}{}
	}
	if e.release != nil {
		select {
		case <-e.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.batches = append(e.batches, len(spans))
	return e.err
}

func (e *countingExporter) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shut = true
	return nil
}

func (e *countingExporter) isShut() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.shut
}

func (e *countingExporter) total() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, b := range e.batches {
		n += b
	}
	return n
}

func TestBatcherExportsAFullBatchWithoutWaiting(t *testing.T) {
	exp := &countingExporter{}
	tp, b := newBatched(t, exp, telemetry.BatchConfig{Interval: time.Hour, MaxBatch: 8})
	endSpans(tp, "s", 8)
	waitFor(t, "the full batch", func() bool { return exp.total() == 8 })
	endSpans(tp, "t", 3) // not a full batch: stays queued until flushed
	if err := b.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	exp.mu.Lock()
	defer exp.mu.Unlock()
	if fmt.Sprint(exp.batches) != "[8 3]" {
		t.Fatalf("batches %v, want [8 3]", exp.batches)
	}
}

func TestBatcherExportsAfterTheInterval(t *testing.T) {
	exp := &countingExporter{}
	tp, _ := newBatched(t, exp, telemetry.BatchConfig{Interval: 10 * time.Millisecond})
	endSpans(tp, "s", 3)
	waitFor(t, "the interval's export", func() bool { return exp.total() == 3 })
}

func TestBatcherDropsBeyondTheQueueAndSaysSo(t *testing.T) {
	exp := &countingExporter{release: make(chan struct{}), entered: make(chan struct{}, 4)}
	var mu sync.Mutex
	var reported []string
	tp, b := newBatched(t, exp, telemetry.BatchConfig{Interval: time.Hour, MaxBatch: 2, MaxQueue: 4, OnError: func(err error) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, err.Error())
	}})
	endSpans(tp, "s", 2) // a full batch: the exporter takes it and blocks
	<-exp.entered
	endSpans(tp, "t", 10) // 4 fit in the queue, 6 are dropped
	close(exp.release)
	if err := b.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := exp.total(); got != 6 {
		t.Fatalf("%d spans exported, want 6 (2 + a full queue of 4)", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || !strings.Contains(reported[0], "6 spans dropped") {
		t.Fatalf("reported %q, want one report of 6 dropped spans", reported)
	}
}

func TestBatcherReportsExportErrors(t *testing.T) {
	exp := &countingExporter{err: errors.New("collector unreachable")}
	got := make(chan error, 1)
	tp, b := newBatched(t, exp, telemetry.BatchConfig{Interval: time.Hour, OnError: func(err error) { got <- err }})
	endSpans(tp, "s", 1)
	if err := b.ForceFlush(context.Background()); err == nil || !strings.Contains(err.Error(), "collector unreachable") {
		t.Fatalf("ForceFlush of spans the exporter refused: %v, want its error", err)
	}
	if err := <-got; !strings.Contains(err.Error(), "exporting 1 spans: collector unreachable") {
		t.Fatalf("reported %v", err)
	}
}

func TestBatcherSkipsUnsampledSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp, b := newBatched(t, exp, telemetry.BatchConfig{Interval: time.Hour}, sdktrace.WithSampler(sdktrace.NeverSample()))
	endSpans(tp, "s", 5)
	if err := b.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d unsampled spans exported", n)
	}
}

func TestBatcherShutdownExportsWhatIsQueued(t *testing.T) {
	exp := &countingExporter{}
	tp, b := newBatched(t, exp, telemetry.BatchConfig{Interval: time.Hour})
	endSpans(tp, "s", 3)
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := exp.total(); got != 3 {
		t.Fatalf("%d spans exported by Shutdown, want 3", got)
	}
	endSpans(tp, "late", 2) // ignored, and no panic
	if err := b.ForceFlush(context.Background()); err != nil {
		t.Fatalf("ForceFlush after Shutdown: %v", err)
	}
	if got := exp.total(); got != 3 {
		t.Fatalf("%d spans exported, want the 3 that ended before Shutdown", got)
	}
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestBatcherUnderConcurrentSpans(t *testing.T) {
	exp := &countingExporter{}
	tp, b := newBatched(t, exp, telemetry.BatchConfig{Interval: time.Millisecond, MaxBatch: 16, MaxQueue: 1 << 16})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() { endSpans(tp, fmt.Sprint(g), 500) })
	}
	wg.Wait()
	if err := b.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := exp.total(); got != 8*500 {
		t.Fatalf("%d spans exported, want %d", got, 8*500)
	}
	exp.mu.Lock()
	defer exp.mu.Unlock()
	for _, n := range exp.batches {
		if n > 16 {
			t.Fatalf("a batch of %d spans, want at most 16", n)
		}
	}
}

// A Shutdown that runs out of time still shuts the exporter down once the
// export in progress ends, as OpenTelemetry's batch processor does, instead of
// leaving its connections open.
func TestBatcherShutdownPastItsDeadlineStillShutsTheExporterDown(t *testing.T) {
	exp := &countingExporter{release: make(chan struct{}), entered: make(chan struct{}, 1)}
	tp, b := newBatched(t, exp, telemetry.BatchConfig{Interval: time.Hour, MaxBatch: 1})
	endSpans(tp, "s", 1)
	<-exp.entered // the export blocks until released
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown with the export stuck: %v, want the context's error", err)
	}
	close(exp.release)
	waitFor(t, "the exporter's shutdown", exp.isShut)
}
