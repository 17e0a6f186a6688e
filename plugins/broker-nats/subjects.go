package main

import "strings"

// coveredBy reports whether every subject topic can match (topic may hold the
// wildcards * and >) is one of the stream subjects: a JetStream consumer for
// the rest would wait for messages the stream never stores.
func coveredBy(topic string, subjects []string) bool {
	for _, s := range subjects {
		if subjectSubset(topic, s) {
			return true
		}
	}
	return false
}

// subjectSubset reports whether the subjects sub matches are all matched by
// super, token by token: > in super takes the rest, * in super any one token,
// and a wildcard in sub only a wildcard at least as wide in super.
func subjectSubset(sub, super string) bool {
	st, pt := strings.Split(sub, "."), strings.Split(super, ".")
	for i, p := range pt {
		if p == ">" {
			return i < len(st)
		}
		if i >= len(st) {
			return false
		}
		switch t := st[i]; {
		case t == ">":
			return false
		case p == "*":
		case t == "*" || t != p:
			return false
		}
	}
	return len(st) == len(pt)
}
