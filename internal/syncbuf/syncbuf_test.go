package syncbuf_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/microhost/micro/internal/syncbuf"
)

// TestConcurrentWritesAndReads writes from several goroutines while reading;
// run with -race, it fails if the buffer is not guarded.
func TestConcurrentWritesAndReads(t *testing.T) {
	var b syncbuf.Buffer
	const writers, lines = 4, 200
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range lines {
				if _, err := b.Write([]byte("line\n")); err != nil {
					t.Error(err)
					return
				}
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if got := strings.Count(b.String(), "line\n"); got != writers*lines {
		t.Fatalf("%d lines written, want %d", got, writers*lines)
	}
}
