package codec_test

import (
	"strings"
	"testing"

	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/errors"
)

// msgpackBody is a msgpack map, {"id": 1}.
var msgpackBody = []byte{0x81, 0xa2, 'i', 'd', 0x01}

func TestForContentType(t *testing.T) {
	cases := []struct {
		name        string
		contentType string
		body        []byte
		want        string // codec name, or "" for an error
		code        int32
	}{
		{"json", "application/json", nil, "json", 0},
		{"json with charset", "application/json; charset=utf-8", nil, "json", 0},
		{"json with tight params", "application/json;charset=UTF-8;foo=bar", nil, "json", 0},
		{"json upper case", "Application/JSON", nil, "json", 0},
		{"json padded", " \tapplication/json \t", nil, "json", 0},
		{"msgpack", "application/msgpack", nil, "msgpack", 0},
		{"msgpack alias", "application/x-msgpack", nil, "msgpack", 0},
		{"msgpack alias upper case", "APPLICATION/X-MSGPACK", nil, "msgpack", 0},
		{"explicit json beats msgpack body", "application/json", msgpackBody, "json", 0},
		{"explicit msgpack beats json body", "application/msgpack", []byte(`{"id":1}`), "msgpack", 0},
		{"text/plain", "text/plain", []byte(`{"id":1}`), "", 415},
		{"unknown with params", "text/plain; charset=utf-8", nil, "", 415},
		{"suffix is not json", "application/problem+json", nil, "", 415},
		{"no slash", "json", nil, "", 415},
		{"params only", "; charset=utf-8", []byte(`{}`), "", 415},
		{"wildcard", "*/*", nil, "", 415},
		{"garbage", "\x00\xff\"", nil, "", 415},
		{"sniff object", "", []byte(` {"id":1}`), "json", 0},
		{"sniff array", "", []byte("\n\t[1,2]"), "json", 0},
		{"sniff string", "", []byte(`"s"`), "json", 0},
		{"sniff msgpack map", "", msgpackBody, "msgpack", 0},
		{"sniff msgpack array", "", []byte{0x92, 0x01, 0x02}, "msgpack", 0},
		{"sniff msgpack str8", "", []byte{0xd9, 0x01, 'x'}, "msgpack", 0},
		{"sniff msgpack map16", "", []byte{0xde, 0x00, 0x00}, "msgpack", 0},
		{"sniff empty body", "", nil, "json", 0},
		{"sniff blank content type", "  ", []byte{0x90}, "msgpack", 0},
		{"sniff whitespace body", "", []byte(" \n "), "json", 0},
		{"sniff number gets default", "", []byte("12"), "json", 0},
		{"sniff fixint gets default", "", []byte{0x05}, "json", 0},
	}
	s := codec.DefaultSet()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := s.ForContentType(tc.contentType, tc.body)
			if got := errors.Code(err); got != tc.code {
				t.Fatalf("ForContentType(%q) error %v: code %d, want %d", tc.contentType, err, got, tc.code)
			}
			if tc.want == "" {
				if c != nil {
					t.Errorf("returned codec %s with the error", c.Name())
				}
				return
			}
			if c == nil || c.Name() != tc.want {
				t.Errorf("ForContentType(%q) = %v, want %s", tc.contentType, c, tc.want)
			}
		})
	}
}

// TestUnsupportedMediaTypeDetail checks the 415 names what was sent and the fix.
func TestUnsupportedMediaTypeDetail(t *testing.T) {
	_, err := codec.DefaultSet().ForContentType("text/plain", nil)
	var e *errors.Error
	if !asError(err, &e) {
		t.Fatalf("error %T %v is not an *errors.Error", err, err)
	}
	if e.Code != 415 || e.Status != "Unsupported Media Type" {
		t.Errorf("code %d %q, want 415", e.Code, e.Status)
	}
	for _, want := range []string{"text/plain", "application/json", "application/msgpack", "application/x-msgpack"} {
		if !strings.Contains(e.Detail, want) {
			t.Errorf("Detail %q does not mention %s", e.Detail, want)
		}
	}
	_, err = codec.DefaultSet().ForContentType(strings.Repeat("x", 10000), nil)
	if d := errors.FromError(err).Detail; len(d) > 400 {
		t.Errorf("Detail is %d bytes long: the echoed header is not cut short", len(d))
	}
}

func TestForAccept(t *testing.T) {
	set := codec.DefaultSet()
	jsonCodec, _ := set.ByName("json")
	msgpackCodec, _ := set.ByName("msgpack")
	cases := []struct {
		name    string
		accept  string
		request codec.Codec
		want    string // codec name, or "" for a 406
	}{
		{"empty follows request", "", msgpackCodec, "msgpack"},
		{"empty without request", "", nil, "json"},
		{"any follows request", "*/*", msgpackCodec, "msgpack"},
		{"any without request", "*/*", nil, "json"},
		{"json", "application/json", msgpackCodec, "json"},
		{"msgpack", "application/msgpack", jsonCodec, "msgpack"},
		{"alias", "application/x-msgpack", jsonCodec, "msgpack"},
		{"case-insensitive", "Application/MsgPack", jsonCodec, "msgpack"},
		{"json preferred by q", "application/json, application/msgpack;q=0.5", msgpackCodec, "json"},
		{"msgpack preferred by q", "application/msgpack, application/json;q=0.9", jsonCodec, "msgpack"},
		{"json refused, wildcard low", "application/json;q=0, */*;q=0.1", msgpackCodec, "msgpack"},
		{"json refused, wildcard low, json request", "application/json;q=0, */*;q=0.1", jsonCodec, "msgpack"},
		{"only refusals", "application/json;q=0, application/msgpack;q=0", jsonCodec, ""},
		{"html", "text/html", jsonCodec, ""},
		{"html and xml", "text/html, application/xhtml+xml, application/xml;q=0.9", nil, ""},
		{"browser default", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", msgpackCodec, "msgpack"},
		{"axios default", "application/json, text/plain, */*", msgpackCodec, "json"},
		{"type wildcard follows request", "application/*", msgpackCodec, "msgpack"},
		{"type wildcard without request", "application/*", nil, "json"},
		{"other type wildcard", "text/*", jsonCodec, ""},
		{"specific beats wildcard at equal q", "*/*;q=0.5, application/msgpack;q=0.5", jsonCodec, "msgpack"},
		{"header order at equal q", "application/msgpack;q=0.5, application/json;q=0.5", jsonCodec, "msgpack"},
		{"most specific range rules", "application/json;q=0.1, application/*;q=0.9", jsonCodec, "msgpack"},
		{"wildcard refused but specific allowed", "application/msgpack, */*;q=0", jsonCodec, "msgpack"},
		{"alias refused, canonical allowed", "application/x-msgpack;q=0, application/msgpack;q=0.4, application/json;q=0.3", nil, "msgpack"},
		{"params ignored", `application/json; charset="utf-8, or not"; q=0.2, application/msgpack;q=0.1`, nil, "json"},
		{"q is case-insensitive", "application/json;Q=0.2, application/msgpack;q=0.3", nil, "msgpack"},
		{"spaces everywhere", "  application/msgpack ; q=0.8 ,\tapplication/json ; q = 0.7 ", nil, "msgpack"},
		{"q with three decimals", "application/json;q=0.001, application/msgpack;q=0.0005", nil, "json"},
		{"q=1.000", "application/json;q=0.999, application/msgpack;q=1.000", nil, "msgpack"},
		{"bad q skips the range", "application/msgpack;q=2, application/json;q=0.1", msgpackCodec, "json"},
		{"only malformed is no preference", "application/json;q=abc", msgpackCodec, "msgpack"},
		{"garbage is no preference", ",,;;, /, */json, \x00", msgpackCodec, "msgpack"},
		{"empty elements skipped", ", ,application/msgpack,", nil, "msgpack"},
		{"extensions after q ignored", "application/json;q=0.5;ext=1, application/msgpack;q=0.4", nil, "json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := set.ForAccept(tc.accept, tc.request)
			if tc.want == "" {
				if errors.Code(err) != 406 || c != nil {
					t.Fatalf("ForAccept(%q) = %v, %v; want a 406", tc.accept, c, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ForAccept(%q): %v", tc.accept, err)
			}
			if c.Name() != tc.want {
				t.Errorf("ForAccept(%q) = %s, want %s", tc.accept, c.Name(), tc.want)
			}
		})
	}
}

// TestNotAcceptableDetail checks the 406 names what was asked for and what is offered.
func TestNotAcceptableDetail(t *testing.T) {
	_, err := codec.DefaultSet().ForAccept("text/html", nil)
	if errors.Code(err) != 406 {
		t.Fatalf("error %v, want a 406", err)
	}
	detail := errors.FromError(err).Detail
	for _, want := range []string{"text/html", "application/json", "application/msgpack"} {
		if !strings.Contains(detail, want) {
			t.Errorf("Detail %q does not mention %s", detail, want)
		}
	}
}

// TestForAcceptRequestCodecNotComparable checks tie-breaking never compares codecs
// with ==, which panics for codec types that are not comparable.
func TestForAcceptRequestCodecNotComparable(t *testing.T) {
	odd := unhashable{fake: fake{"odd", "application/odd"}, opts: []string{"x"}}
	s := codec.NewSet(codec.JSON(), odd)
	c, err := s.ForAccept("application/*", odd)
	if err != nil || c.Name() != "odd" {
		t.Errorf("ForAccept = %v, %v; want the request codec", c, err)
	}
}

// TestNegotiationDoesNotAllocate checks the hot paths stay allocation-free.
func TestNegotiationDoesNotAllocate(t *testing.T) {
	s := codec.DefaultSet()
	req := s.Default()
	cases := []struct {
		name string
		run  func()
	}{
		{"content type exact", func() { _, _ = s.ForContentType("application/json", msgpackBody) }},
		{"content type with charset", func() { _, _ = s.ForContentType("application/json; charset=utf-8", nil) }},
		{"content type alias upper case", func() { _, _ = s.ForContentType("APPLICATION/X-MSGPACK", nil) }},
		{"content type sniffed", func() { _, _ = s.ForContentType("", msgpackBody) }},
		{"accept exact", func() { _, _ = s.ForAccept("application/json", req) }},
		{"accept empty", func() { _, _ = s.ForAccept("", req) }},
		{"accept any", func() { _, _ = s.ForAccept("*/*", req) }},
		{"accept with q-values", func() { _, _ = s.ForAccept("application/json, application/msgpack;q=0.5, */*;q=0.1", req) }},
	}
	for _, tc := range cases {
		if n := testing.AllocsPerRun(100, tc.run); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", tc.name, n)
		}
	}
}

func asError(err error, target **errors.Error) bool {
	e, ok := err.(*errors.Error)
	*target = e
	return ok
}
