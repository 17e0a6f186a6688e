package main

import "testing"

func TestClassifySource(t *testing.T) {
	for _, tc := range []struct {
		source string
		want   sourceKind
	}{
		{"https://example.com/plugins/micro-codec-x.tar.gz", sourceArchive},
		{"http://example.com/micro-codec-x.zip", sourceArchive},
		{"HTTPS://example.com/micro-codec-x.tar.gz", sourceArchive},
		{"Http://example.com/micro-codec-x.zip", sourceArchive},
		{"example.com/plugins/codec-x@v1.2.3", sourceGoModule},
	} {
		got, err := classifySource(tc.source)
		if err != nil || got != tc.want {
			t.Errorf("classifySource(%q) = %v, %v; want %v", tc.source, got, err, tc.want)
		}
	}
	if _, err := classifySource("ftp://example.com/x.tar.gz"); err == nil {
		t.Error("an ftp URL was accepted")
	}
}
