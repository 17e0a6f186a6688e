package telemetry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// BatchConfig tunes a Batcher; zero fields take defaults.
type BatchConfig struct {
	// Interval is the longest a finished span waits before it is exported
	// (default 5s).
	Interval time.Duration
	// MaxBatch is the most spans one export carries; a full batch is exported
	// at once (default 128: a quarter of OpenTelemetry's default, so fewer
	// ended spans stay in memory between exports, which on a busy host with a
	// small heap measurably means fewer garbage collections).
	MaxBatch int
	// MaxQueue is the most spans waiting for export; spans beyond it are
	// dropped and counted (default 2048).
	MaxQueue int
	// ExportTimeout bounds one export (default 30s).
	ExportTimeout time.Duration
	// OnError hears of failed exports and of spans dropped because the
	// queue was full (default: nobody).
	OnError func(error)
}

// Batcher is a span processor that exports finished spans in batches from
// one goroutine. Ending a span only appends it to a queue under a lock: the
// goroutine wakes when a batch is full or the interval has passed, never for a
// single span, which on a busy host saves a goroutine wake-up per span over
// the SDK's channel-fed batch processor.
type Batcher struct {
	exp sdktrace.SpanExporter
	cfg BatchConfig

	mu      sync.Mutex
	queue   []sdktrace.ReadOnlySpan
	spare   []sdktrace.ReadOnlySpan // the other buffer, swapped in at each export
	dropped int
	stopped bool

	full    chan struct{}   // a batch is ready (buffered, one pending signal)
	flushes chan chan error // ForceFlush requests, answered when exported
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// NewBatcher starts a Batcher exporting to exp.
func NewBatcher(exp sdktrace.SpanExporter, cfg BatchConfig) *Batcher {
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 128
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 2048
	}
	cfg.MaxBatch = min(cfg.MaxBatch, cfg.MaxQueue)
	if cfg.ExportTimeout <= 0 {
		cfg.ExportTimeout = 30 * time.Second
	}
	b := &Batcher{
		exp:     exp,
		cfg:     cfg,
		queue:   make([]sdktrace.ReadOnlySpan, 0, cfg.MaxBatch),
		spare:   make([]sdktrace.ReadOnlySpan, 0, cfg.MaxBatch),
		full:    make(chan struct{}, 1),
		flushes: make(chan chan error),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go b.run()
	return b
}

// OnStart does nothing: spans are only seen once they end.
func (b *Batcher) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues a sampled span for export.
func (b *Batcher) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	b.mu.Lock()
	switch {
	case b.stopped:
	case len(b.queue) >= b.cfg.MaxQueue:
		b.dropped++
	default:
		b.queue = append(b.queue, s)
		if len(b.queue) == b.cfg.MaxBatch {
			select {
			case b.full <- struct{}{}:
			default: // a signal is already pending
			}
		}
	}
	b.mu.Unlock()
}

// ForceFlush exports every queued span before it returns, and returns the
// exporter's error if it failed, or ctx's.
func (b *Batcher) ForceFlush(ctx context.Context) error {
	answered := make(chan error, 1)
	select {
	case b.flushes <- answered:
	case <-b.done:
		return nil // shut down: everything was exported
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-answered:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports what is queued, stops the goroutine and shuts the exporter
// down. Spans that end afterwards are ignored. When ctx ends first, the
// exporter is still shut down once the export in progress ends.
func (b *Batcher) Shutdown(ctx context.Context) error {
	var err error
	b.once.Do(func() {
		b.mu.Lock()
		b.stopped = true
		b.mu.Unlock()
		close(b.stop)
		shut := make(chan error, 1)
		go func() {
			<-b.done
			shut <- b.exp.Shutdown(ctx)
		}()
		select {
		case err = <-shut:
		case <-ctx.Done():
			err = ctx.Err()
		}
	})
	return err
}

// run exports whenever a batch is full, the interval passes, a flush is asked
// for, or the Batcher stops.
func (b *Batcher) run() {
	defer close(b.done)
	tick := time.NewTicker(b.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-b.full:
			b.export()
		case <-tick.C:
			b.export()
		case answered := <-b.flushes:
			answered <- b.export()
		case <-b.stop:
			b.export()
			return
		}
	}
}

// export sends everything queued, a batch at a time, and returns the
// exporter's errors.
func (b *Batcher) export() error {
	var errs []error
	for {
		b.mu.Lock()
		batch := b.queue
		if len(batch) > b.cfg.MaxBatch {
			// More than one batch queued: send the first, keep the rest.
			batch = append(b.spare[:0], b.queue[:b.cfg.MaxBatch]...)
			n := copy(b.queue, b.queue[b.cfg.MaxBatch:])
			clear(b.queue[n:])
			b.queue = b.queue[:n]
		} else {
			b.queue = b.spare[:0]
		}
		dropped := b.dropped
		b.dropped = 0
		b.mu.Unlock()

		if dropped > 0 {
			b.report(fmt.Errorf("telemetry: %d spans dropped: more spans ended than the exporter took (queue of %d)", dropped, b.cfg.MaxQueue))
		}
		if len(batch) == 0 {
			b.giveBack(batch)
			return errors.Join(errs...)
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.ExportTimeout)
		err := b.exp.ExportSpans(ctx, batch)
		cancel()
		if err != nil {
			err = fmt.Errorf("telemetry: exporting %d spans: %w", len(batch), err)
			b.report(err)
			errs = append(errs, err)
		}
		more := len(batch) == b.cfg.MaxBatch
		b.giveBack(batch)
		if !more {
			return errors.Join(errs...)
		}
	}
}

// giveBack makes an exported batch's buffer the spare again; exporters do not
// keep the slice they are given.
func (b *Batcher) giveBack(batch []sdktrace.ReadOnlySpan) {
	clear(batch)
	b.mu.Lock()
	b.spare = batch[:0]
	b.mu.Unlock()
}

// report hands err to OnError.
func (b *Batcher) report(err error) {
	if b.cfg.OnError != nil && !errors.Is(err, context.Canceled) {
		b.cfg.OnError(err)
	}
}
