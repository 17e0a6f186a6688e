package broker

import (
	"fmt"
	"strings"
)

// Wildcard tokens, valid only in subscription patterns.
const (
	// AnyToken matches exactly one token: "a.*.c" matches "a.b.c", not "a.b.b.c".
	AnyToken = "*"
	// RestTokens, as the last token only, matches one or more remaining tokens:
	// "a.>" matches "a.b" and "a.b.c", not "a".
	RestTokens = ">"
)

// topicFault names the first rule a topic breaks; checking never allocates.
type topicFault int

const (
	faultNone            topicFault = iota
	faultEmpty                      // "" has no token at all
	faultEmptyToken                 // "a..b", ".a", "a."
	faultBadChar                    // a space or control character inside a token
	faultPartialWildcard            // "*x", "a>": a wildcard glued to other characters
	faultRestNotLast                // "a.>.c": ">" before the last token
	faultWildcardPublish            // any wildcard in a topic being published to
)

// ValidateTopic reports whether a message can be published to topic: one or more
// dot-separated non-empty tokens without spaces, control characters or wildcards.
// The error wraps ErrInvalidTopic and names the topic, the token and the rule.
func ValidateTopic(topic string) error {
	if f, i, tok := checkTopic(topic, false); f != faultNone {
		return topicError(topic, false, f, i, tok)
	}
	return nil
}

// ValidatePattern reports whether pattern can be subscribed to: the topic rules,
// plus "*" as a whole token anywhere and ">" as the whole last token.
// The error wraps ErrInvalidTopic and names the pattern, the token and the rule.
func ValidatePattern(pattern string) error {
	if f, i, tok := checkTopic(pattern, true); f != faultNone {
		return topicError(pattern, true, f, i, tok)
	}
	return nil
}

// Match reports whether topic matches the subscription pattern. It is false when
// either is invalid, and it never allocates.
func Match(pattern, topic string) bool {
	if f, _, _ := checkTopic(pattern, true); f != faultNone {
		return false
	}
	if f, _, _ := checkTopic(topic, false); f != faultNone {
		return false
	}
	for {
		ptok, prest, pmore := strings.Cut(pattern, ".")
		ttok, trest, tmore := strings.Cut(topic, ".")
		if ptok == RestTokens {
			return true // valid patterns hold ">" last, and topic has a token left
		}
		if ptok != AnyToken && ptok != ttok {
			return false
		}
		if !pmore || !tmore {
			return pmore == tmore
		}
		pattern, topic = prest, trest
	}
}

// checkTopic scans topic once and returns the first fault with its 1-based token
// index and the token; pattern allows wildcards.
func checkTopic(topic string, pattern bool) (fault topicFault, index int, token string) {
	if topic == "" {
		return faultEmpty, 0, ""
	}
	rest := topic
	for i := 1; ; i++ {
		tok, next, more := strings.Cut(rest, ".")
		if f := checkToken(tok, pattern, more); f != faultNone {
			return f, i, tok
		}
		if !more {
			return faultNone, 0, ""
		}
		rest = next
	}
}

// checkToken checks one token; more says whether another token follows.
func checkToken(tok string, pattern, more bool) topicFault {
	if tok == "" {
		return faultEmptyToken
	}
	if tok == AnyToken || tok == RestTokens {
		switch {
		case !pattern:
			return faultWildcardPublish
		case tok == RestTokens && more:
			return faultRestNotLast
		}
		return faultNone
	}
	for i := 0; i < len(tok); i++ {
		switch c := tok[i]; {
		case c == '*' || c == '>':
			if pattern {
				return faultPartialWildcard
			}
			return faultWildcardPublish
		case c <= ' ' || c == 0x7f:
			return faultBadChar
		}
	}
	return faultNone
}

// topicError turns a fault into an error that names the topic, the rule and the fix.
func topicError(topic string, pattern bool, f topicFault, i int, tok string) error {
	kind := "topic"
	if pattern {
		kind = "subscription topic"
	}
	switch f {
	case faultEmpty:
		return fmt.Errorf("broker: %w: the %s is empty; use dot-separated tokens such as \"orders.created\"", ErrInvalidTopic, kind)
	case faultEmptyToken:
		return fmt.Errorf("broker: %w %q: token %d is empty; tokens are separated by single dots and may not be empty", ErrInvalidTopic, topic, i)
	case faultBadChar:
		return fmt.Errorf("broker: %w %q: token %d (%q) holds a space or control character; tokens must be printable and space-free", ErrInvalidTopic, topic, i, tok)
	case faultPartialWildcard:
		return fmt.Errorf("broker: %w %q: token %d (%q) glues a wildcard to other characters; \"*\" and \">\" must stand alone as a whole token", ErrInvalidTopic, topic, i, tok)
	case faultRestNotLast:
		return fmt.Errorf("broker: %w %q: \">\" is token %d but may only be the last token (it matches all remaining tokens); use \"*\" to match a single token", ErrInvalidTopic, topic, i)
	case faultWildcardPublish:
		return fmt.Errorf("broker: %w %q: cannot publish to it, token %d (%q) holds a wildcard; \"*\" and \">\" are for subscriptions only, publish to a concrete topic", ErrInvalidTopic, topic, i, tok)
	}
	return fmt.Errorf("broker: %w %q", ErrInvalidTopic, topic)
}
