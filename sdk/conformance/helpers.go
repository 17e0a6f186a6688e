package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path"
	"strings"
	"testing"
	"time"
)

// newID returns a random lowercase hex string, so that names made from it are
// unique per run and runs can share one real server.
func newID() string {
	var b [5]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// slug turns the last element of a test name into lowercase letters, digits and
// dashes, which every backend accepts in names and topics.
func slug(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(path.Base(testName)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

// callCtx returns a context for one call, ending with the test or after d.
func callCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// cleanupCtx returns a context for cleanup work, which runs after t.Context ended.
func cleanupCtx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// eventually polls check, backing off from 2ms to 100ms, until it returns nil; it
// fails t with check's last error once within has passed.
func eventually(t *testing.T, within time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	pause := 2 * time.Millisecond
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not the case after %v: %v", what, within, err)
		}
		timer := time.NewTimer(pause)
		select {
		case <-timer.C:
		case <-t.Context().Done():
			timer.Stop()
			t.Fatalf("%s: test ended while waiting: %v", what, err)
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// receive returns the next value from ch, failing t if none comes within d.
func receive[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
	var zero T
	return zero
}

// silent reports whether ch yields nothing for d; if it does, it returns the value.
func silent[T any](ch <-chan T, d time.Duration) (T, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v, false
	case <-timer.C:
		var zero T
		return zero, true
	}
}

// headerValue returns h[key] in any letter case, as backends may canonicalise
// header names.
func headerValue(h map[string]string, key string) (string, bool) {
	if v, ok := h[key]; ok {
		return v, true
	}
	for k, v := range h {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// reportErrors fails t with the errors received from errs until it is closed,
// the first few in full and the rest as a count, so one broken operation repeated
// by many goroutines does not bury the log.
func reportErrors(t *testing.T, errs <-chan error) {
	t.Helper()
	const shown = 5
	n := 0
	for err := range errs {
		if n < shown {
			t.Error(err)
		}
		n++
	}
	if n > shown {
		t.Errorf("... and %d more errors like these", n-shown)
	}
}
