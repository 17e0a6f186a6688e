package main

import "testing"

// handles delivers seq the consumer's first time and reports whether it is to
// be handled.
func (p *progress) handles(seq uint64) bool {
	_, ok := p.deliver(seq, 1)
	return ok
}

// TestProgressCarriesAttempts checks a message's attempts count on across a
// consumer made again, which numbers its deliveries from 1 again.
func TestProgressCarriesAttempts(t *testing.T) {
	p := newProgress()
	p.begin(0, 0, 0)
	for delivered := 1; delivered <= 2; delivered++ { // nacked twice
		if attempt, ok := p.deliver(4, delivered); !ok || attempt != delivered {
			t.Fatalf("deliver(4, %d) = %d, %v; want attempt %d", delivered, attempt, ok, delivered)
		}
	}
	if got := p.remake(); got != 4 {
		t.Fatalf("remake = %d, want 4", got)
	}
	p.remake() // made again twice: nothing counts twice
	if attempt, ok := p.deliver(4, 1); !ok || attempt != 3 {
		t.Fatalf("first delivery by the new consumer = attempt %d, %v; want 3", attempt, ok)
	}
	p.settle(4)
	if attempt, _ := p.deliver(9, 1); attempt != 1 {
		t.Fatalf("a new message's first delivery = attempt %d, want 1", attempt)
	}
}

// TestProgress checks where a consumer made again starts, and which
// deliveries are handled, as messages are delivered and settled.
func TestProgress(t *testing.T) {
	t.Run("NothingHandled", func(t *testing.T) {
		p := newProgress()
		p.begin(7, 7, 0) // a new consumer on a stream holding 7 messages
		if got := p.remake(); got != 8 {
			t.Errorf("remake = %d, want 8", got)
		}
	})
	t.Run("InOrder", func(t *testing.T) {
		p := newProgress()
		p.begin(0, 0, 0)
		for _, seq := range []uint64{2, 5, 6} { // 1, 3 and 4 are other topics'
			if !p.handles(seq) {
				t.Fatalf("deliver(%d) = false for a new message", seq)
			}
			p.settle(seq)
		}
		if got := p.remake(); got != 7 {
			t.Errorf("remake = %d, want 7", got)
		}
		if p.handles(5) {
			t.Error("deliver(5) = true for a handled message")
		}
	})
	t.Run("NackedAndLaterHandled", func(t *testing.T) {
		p := newProgress()
		p.begin(0, 0, 0)
		p.handles(1)
		p.settle(1)
		p.handles(2) // nacked: stays pending
		p.handles(3)
		p.settle(3)
		if got := p.remake(); got != 2 {
			t.Errorf("remake = %d, want 2: the nacked message", got)
		}
		if !p.handles(2) {
			t.Error("deliver(2) = false for the nacked message")
		}
		if p.handles(3) {
			t.Error("deliver(3) = true for a message handled while 2 was pending")
		}
		p.handles(4)
		p.settle(2)
		p.settle(4)
		if got := p.remake(); got != 5 {
			t.Errorf("remake = %d, want 5", got)
		}
	})
	t.Run("JoinedWithUnacked", func(t *testing.T) {
		p := newProgress()
		p.begin(10, 14, 2) // 11..14 were delivered before; two of them unacked
		for _, seq := range []uint64{15, 16} {
			p.handles(seq)
			p.settle(seq)
		}
		if got := p.remake(); got != 11 {
			t.Errorf("remake = %d, want 11: the unacked ones may not have come yet", got)
		}
		if !p.handles(12) {
			t.Error("deliver(12) = false for a message delivered before the subscription")
		}
		if p.handles(15) {
			t.Error("deliver(15) = true for a handled message")
		}
	})
	t.Run("JoinedWithUnackedAllCame", func(t *testing.T) {
		p := newProgress()
		p.begin(10, 14, 2)
		for _, seq := range []uint64{15, 12, 14, 16} {
			p.handles(seq)
			p.settle(seq)
		}
		if got := p.remake(); got != 17 {
			t.Errorf("remake = %d, want 17", got)
		}
	})
	t.Run("Bounded", func(t *testing.T) {
		p := newProgress()
		p.begin(0, 0, 0)
		p.handles(1) // nacked again and again
		for seq := uint64(2); seq < 3*maxHandledAbove; seq++ {
			p.handles(seq)
			p.settle(seq)
		}
		if n := len(p.handled); n > maxHandledAbove {
			t.Errorf("%d handled remembered, want at most %d", n, maxHandledAbove)
		}
		if got := p.remake(); got != 1 {
			t.Errorf("remake = %d, want 1: the nacked message", got)
		}
	})
}
