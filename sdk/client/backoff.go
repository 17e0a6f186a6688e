package client

import (
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Backoff returns how long to wait before try number attempt (1 for the first retry).
type Backoff func(attempt int) time.Duration

// JitteredBackoff doubles from base up to max and waits a random time up to that
// ("full jitter"), so retrying clients do not move in lockstep.
func JitteredBackoff(base, max time.Duration) Backoff {
	return func(attempt int) time.Duration {
		d := base << (attempt - 1)
		if d <= 0 || d > max {
			d = max
		}
		if d <= 0 {
			return 0
		}
		if d == math.MaxInt64 {
			return time.Duration(rand.Int64N(int64(d)))
		}
		return time.Duration(rand.Int64N(int64(d) + 1))
	}
}

// retryBudget is a token bucket counted in thousandths: each call adds ratio
// tokens, each retry spends one, so retries stay a bounded share of calls.
type retryBudget struct {
	milli atomic.Int64
	ratio int64 // thousandths added per call
}

const budgetMaxMilli = 100_000 // at most 100 retries banked

func newRetryBudget(ratio float64) *retryBudget {
	b := &retryBudget{ratio: int64(ratio * 1000)}
	b.milli.Store(10_000)
	return b
}

func (b *retryBudget) deposit() {
	if b.milli.Load() >= budgetMaxMilli {
		return
	}
	b.milli.Add(b.ratio)
}

func (b *retryBudget) withdraw() bool {
	for {
		cur := b.milli.Load()
		if cur < 1000 {
			return false
		}
		if b.milli.CompareAndSwap(cur, cur-1000) {
			return true
		}
	}
}
