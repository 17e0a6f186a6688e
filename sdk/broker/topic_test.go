package broker_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/microhost/micro/sdk/broker"
)

// matchCases is the topic matching table, shared by the Match and broker tests.
var matchCases = []struct {
	pattern, topic string
	want           bool
}{
	{"a.b.c", "a.b.c", true},
	{"a.b.c", "a.b", false},
	{"a.b", "a.b.c", false},
	{"a.b.c", "a.b.d", false},
	{"a.*.c", "a.b.c", true},
	{"a.*.c", "a.b.b.c", false},
	{"a.*.c", "a.c", false},
	{"*", "a", true},
	{"*", "a.b", false},
	{"*.*", "a.b", true},
	{"a.>", "a", false},
	{"a.>", "a.b", true},
	{"a.>", "a.b.c", true},
	{"a.>", "b.c", false},
	{">", "a", true},
	{">", "a.b.c", true},
	{"*.>", "a", false},
	{"*.>", "a.b", true},
	{"a.*.>", "a.b", false},
	{"a.*.>", "a.b.c.d", true},
	{"orders.created", "orders.created", true},
	{"orders.created", "orders.createdx", false},
	{"ab", "a", false},
}

func TestMatch(t *testing.T) {
	for _, tc := range matchCases {
		if got := broker.Match(tc.pattern, tc.topic); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.topic, got, tc.want)
		}
	}
}

func TestMatchAllocatesNothing(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		broker.Match("a.*.c.>", "a.b.c.d.e")
	})
	if allocs != 0 {
		t.Errorf("Match allocates %v times per call, want 0", allocs)
	}
}

func TestValidatePattern(t *testing.T) {
	tests := []struct {
		pattern string
		want    string // "" when valid, else a piece of the error text
	}{
		{"a", ""},
		{"a.b.c", ""},
		{"a.*.c", ""},
		{"a.>", ""},
		{">", ""},
		{"*", ""},
		{"a.>.c", `">" is token 2 but may only be the last token`},
		{">.a", `may only be the last token`},
		{"a..b", "token 2 is empty"},
		{".a", "token 1 is empty"},
		{"a.", "token 2 is empty"},
		{"", "empty"},
		{"a.*x", `token 2 ("*x") glues a wildcard`},
		{"a.b>", `token 2 ("b>") glues a wildcard`},
		{"a.b c", "space or control character"},
		{"a.\tb", "space or control character"},
	}
	for _, tc := range tests {
		err := broker.ValidatePattern(tc.pattern)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("ValidatePattern(%q) = %v, want nil", tc.pattern, err)
		case tc.want != "" && err == nil:
			t.Errorf("ValidatePattern(%q) = nil, want an error containing %q", tc.pattern, tc.want)
		case tc.want != "" && !errors.Is(err, broker.ErrInvalidTopic):
			t.Errorf("ValidatePattern(%q) = %v, want it to wrap ErrInvalidTopic", tc.pattern, err)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("ValidatePattern(%q) = %q, want it to contain %q", tc.pattern, err, tc.want)
		case tc.want != "" && tc.pattern != "" && !strings.Contains(err.Error(), strconv.Quote(tc.pattern)):
			t.Errorf("ValidatePattern(%q) = %q, want it to name the pattern", tc.pattern, err)
		}
		if tc.want != "" && broker.Match(tc.pattern, "a.b.c") {
			t.Errorf("Match(%q, ...) = true for an invalid pattern", tc.pattern)
		}
	}
}

func TestValidateTopicRejectsWildcards(t *testing.T) {
	for _, topic := range []string{"a.*", ">", "a.>", "a.*x", "a.b>"} {
		err := broker.ValidateTopic(topic)
		if !errors.Is(err, broker.ErrInvalidTopic) {
			t.Fatalf("ValidateTopic(%q) = %v, want ErrInvalidTopic", topic, err)
		}
		for _, want := range []string{topic, "cannot publish", "for subscriptions only"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("ValidateTopic(%q) = %q, want it to contain %q", topic, err, want)
			}
		}
	}
	if err := broker.ValidateTopic("orders.created"); err != nil {
		t.Errorf("ValidateTopic(orders.created) = %v", err)
	}
}

func TestPublishRejectsInvalidTopics(t *testing.T) {
	m := newBroker(t)
	for _, topic := range []string{"a.*", "a.>", "", "a..b"} {
		err := m.Publish(context.Background(), topic, &broker.Message{})
		if !errors.Is(err, broker.ErrInvalidTopic) {
			t.Errorf("Publish(%q) = %v, want ErrInvalidTopic", topic, err)
		}
	}
	for _, pattern := range []string{"a.>.c", "a..b", "", "a.*x"} {
		_, err := m.Subscribe(context.Background(), pattern, func(context.Context, broker.Delivery) error { return nil })
		if !errors.Is(err, broker.ErrInvalidTopic) {
			t.Errorf("Subscribe(%q) = %v, want ErrInvalidTopic", pattern, err)
		}
	}
}

// TestBrokerMatchesLikeMatch runs the matching table through the broker's index:
// a subscription gets the topic exactly when Match says so. Each subscription is
// ordered, so a sentinel published after the topic and matching the pattern
// proves the topic was skipped when it arrives first.
func TestBrokerMatchesLikeMatch(t *testing.T) {
	for _, tc := range matchCases {
		t.Run(tc.pattern+" vs "+tc.topic, func(t *testing.T) {
			m := newBroker(t)
			got := make(chan string, 2)
			subscribe(t, m, tc.pattern, func(_ context.Context, d broker.Delivery) error {
				got <- d.Topic()
				return nil
			})
			sentinel := strings.NewReplacer("*", "sentinel", ">", "sentinel").Replace(tc.pattern)
			publish(t, m, tc.topic, "topic")
			publish(t, m, sentinel, "sentinel")
			first := receive(t, got, "first delivery")
			if matched := first == tc.topic; matched != tc.want {
				t.Errorf("pattern %q, topic %q: first delivery was %q, want match = %v", tc.pattern, tc.topic, first, tc.want)
			}
		})
	}
}
