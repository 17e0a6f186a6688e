package broker_test

import (
	"strings"
	"testing"

	"github.com/microhost/micro/sdk/broker"
)

// FuzzTopicMatch checks that validation and matching never panic and that Match
// agrees with a plain split-based reference. Its seeds run with every go test.
func FuzzTopicMatch(f *testing.F) {
	for _, tc := range matchCases {
		f.Add(tc.pattern, tc.topic)
	}
	for _, seed := range [][2]string{
		{"a.>.c", "a.b.c"}, {"a..b", "a..b"}, {"", ""}, {"a.*x", "a.bx"}, {".", "."},
		{">", ""}, {"*", "*"}, {"a.b ", "a.b "}, {"\x00", "\x00"}, {"é.*", "é.ü"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, topic string) {
		patternErr := broker.ValidatePattern(pattern)
		topicErr := broker.ValidateTopic(topic)
		got := broker.Match(pattern, topic)
		if patternErr != nil || topicErr != nil {
			if got {
				t.Fatalf("Match(%q, %q) = true with pattern error %v, topic error %v", pattern, topic, patternErr, topicErr)
			}
			return
		}
		if broker.ValidatePattern(topic) != nil {
			t.Fatalf("topic %q is publishable but not subscribable", topic)
		}
		if want := referenceMatch(pattern, topic); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", pattern, topic, got, want)
		}
		if !broker.Match(topic, topic) {
			t.Fatalf("Match(%q, itself) = false", topic)
		}
	})
}

// referenceMatch is the obvious, allocating implementation of the matching rules
// for valid inputs.
func referenceMatch(pattern, topic string) bool {
	p, tt := strings.Split(pattern, "."), strings.Split(topic, ".")
	for i, tok := range p {
		switch {
		case tok == ">":
			return len(tt) > i
		case i >= len(tt):
			return false
		case tok != "*" && tok != tt[i]:
			return false
		}
	}
	return len(p) == len(tt)
}
