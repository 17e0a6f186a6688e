package main

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNextIndex(t *testing.T) {
	for _, tc := range []struct{ prev, last, want uint64 }{
		{0, 7, 7}, // first answer
		{7, 9, 9}, // moved on
		{9, 9, 9}, // timed out unchanged
		{9, 3, 0}, // went backwards (restore, new agent): start over
		{0, 0, 1}, // never 0 after an answer, so the next query blocks
	} {
		if got := nextIndex(tc.prev, tc.last); got != tc.want {
			t.Errorf("nextIndex(%d, %d) = %d, want %d", tc.prev, tc.last, got, tc.want)
		}
	}
}

func TestCutKeepsCharacters(t *testing.T) {
	s := strings.Repeat("aé🚀", 300)
	pieces := cut(s, maxMetaValueLen)
	if strings.Join(pieces, "") != s {
		t.Fatal("pieces do not join back to the input")
	}
	for i, p := range pieces {
		if len(p) > maxMetaValueLen || !utf8.ValidString(p) {
			t.Errorf("piece %d: %d bytes, valid UTF-8 %v", i, len(p), utf8.ValidString(p))
		}
	}
}
