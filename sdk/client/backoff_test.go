package client_test

import (
	"math"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/client"
)

func TestJitteredBackoff(t *testing.T) {
	for _, tc := range []struct {
		name      string
		base, max time.Duration
		attempt   int
		limit     time.Duration
	}{
		{"first retry", 10 * time.Millisecond, time.Second, 1, 10 * time.Millisecond},
		{"doubles", 10 * time.Millisecond, time.Second, 3, 40 * time.Millisecond},
		{"capped", 10 * time.Millisecond, 50 * time.Millisecond, 10, 50 * time.Millisecond},
		{"shift past the top", time.Second, time.Minute, 80, time.Minute},
		{"largest durations", math.MaxInt64, math.MaxInt64, 2, math.MaxInt64},
		{"zero", 0, 0, 1, 0},
	} {
		b := client.JitteredBackoff(tc.base, tc.max)
		for range 100 {
			if d := b(tc.attempt); d < 0 || d > tc.limit {
				t.Fatalf("%s: %v, want within [0, %v]", tc.name, d, tc.limit)
			}
		}
	}
}
