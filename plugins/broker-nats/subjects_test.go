package main

import "testing"

func TestSubjectSubset(t *testing.T) {
	for _, tc := range []struct {
		sub, super string
		want       bool
	}{
		{"orders.new", "orders.new", true},
		{"orders.new", "orders.*", true},
		{"orders.new", "orders.>", true},
		{"orders.eu.new", "orders.>", true},
		{"orders.eu.new", "orders.*", false},
		{"orders", "orders.>", false},
		{"orders.*", "orders.>", true},
		{"orders.*", "orders.*", true},
		{"orders.>", "orders.>", true},
		{"orders.>", "orders.*", false},
		{"orders.*", "orders.new", false},
		{"orders.*.x", "orders.*.x", true},
		{"orders.*.x", "orders.*.y", false},
		{"elsewhere.x", "orders.>", false},
		{"orders.new", "*.new", true},
		{"ordersx.new", "orders.>", false},
	} {
		if got := subjectSubset(tc.sub, tc.super); got != tc.want {
			t.Errorf("subjectSubset(%q, %q) = %v, want %v", tc.sub, tc.super, got, tc.want)
		}
	}
}
