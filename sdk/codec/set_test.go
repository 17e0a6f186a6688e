package codec_test

import (
	"reflect"
	"sync"
	"testing"

	"github.com/microhost/micro/sdk/codec"
)

// fake is a codec with a chosen name and content type.
type fake struct{ name, contentType string }

func (f fake) Name() string                { return f.name }
func (f fake) ContentType() string         { return f.contentType }
func (f fake) Marshal(any) ([]byte, error) { return []byte(f.name), nil }
func (f fake) Unmarshal([]byte, any) error { return nil }

// unhashable is a codec whose dynamic type cannot be compared with ==.
type unhashable struct {
	fake
	opts []string
}

func TestBuiltin(t *testing.T) {
	if got, want := codec.BuiltinNames(), []string{"json", "msgpack"}; !reflect.DeepEqual(got, want) {
		t.Errorf("BuiltinNames() = %v, want %v", got, want)
	}
	names := codec.BuiltinNames()
	names[0] = "changed"
	if codec.BuiltinNames()[0] != "json" {
		t.Error("BuiltinNames returned the table itself")
	}
	for _, name := range []string{"", "JSON", "xml", "msgpack "} {
		if c, ok := codec.Builtin(name); ok || c != nil {
			t.Errorf("Builtin(%q) = %v, %v; want nil, false", name, c, ok)
		}
	}
}

func TestDefaultSet(t *testing.T) {
	s := codec.DefaultSet()
	if d := s.Default(); d == nil || d.Name() != "json" {
		t.Fatalf("Default() = %v, want json", d)
	}
	var names []string
	for _, c := range s.Codecs() {
		names = append(names, c.Name())
	}
	if !reflect.DeepEqual(names, []string{"json", "msgpack"}) {
		t.Errorf("Codecs() = %v", names)
	}
	for _, name := range []string{"json", "msgpack"} {
		if c, ok := s.ByName(name); !ok || c.Name() != name {
			t.Errorf("ByName(%q) = %v, %v", name, c, ok)
		}
	}
	if _, ok := s.ByName("xml"); ok {
		t.Error("ByName(xml) found something")
	}
}

func TestSetAdd(t *testing.T) {
	xml := fake{"xml", "application/xml"}
	s := codec.NewSet(fake{"a", "application/a"}, nil, xml)
	if d := s.Default(); d.Name() != "a" {
		t.Errorf("Default() = %s, want the first codec", d.Name())
	}

	// Extra aliases, in any case and with parameters, are normalised.
	s.Add(xml, "Text/XML; charset=utf-8", "not a media type", "*/*", "")
	for _, ct := range []string{"application/xml", "text/xml", "TEXT/XML"} {
		c, err := s.ForContentType(ct, nil)
		if err != nil || c.Name() != "xml" {
			t.Errorf("ForContentType(%q) = %v, %v; want xml", ct, c, err)
		}
	}

	// Same name replaces in place, keeping the order.
	s.Add(fake{"a", "application/a2"})
	if got := len(s.Codecs()); got != 2 {
		t.Errorf("%d codecs after replacing, want 2", got)
	}
	if c, err := s.ForContentType("application/a2", nil); err != nil || c.Name() != "a" {
		t.Errorf("replacement not registered: %v, %v", c, err)
	}
	if _, err := s.ForContentType("application/a", nil); err == nil {
		t.Error("replaced codec's media type still registered")
	}

	// A media type already claimed stays with the earlier codec.
	s.Add(fake{"b", "application/b"}, "application/xml")
	if c, _ := s.ForContentType("application/xml", nil); c.Name() != "xml" {
		t.Errorf("application/xml moved to %s", c.Name())
	}

	// Codecs returns a copy.
	cs := s.Codecs()
	cs[0] = nil
	if s.Default() == nil {
		t.Error("Codecs returned the Set's own slice")
	}
}

func TestEmptySet(t *testing.T) {
	for name, s := range map[string]*codec.Set{"nil": nil, "zero": {}, "NewSet()": codec.NewSet()} {
		t.Run(name, func(t *testing.T) {
			s.Add(nil)
			if s.Default() != nil || len(s.Codecs()) != 0 {
				t.Error("empty set has codecs")
			}
			if _, ok := s.ByName("json"); ok {
				t.Error("ByName found a codec")
			}
			if _, err := s.ForContentType("application/json", nil); err == nil {
				t.Error("ForContentType: no error")
			}
			if _, err := s.ForContentType("", []byte("{}")); err == nil {
				t.Error("ForContentType sniffing: no error")
			}
			if _, err := s.ForAccept("application/json", nil); err == nil {
				t.Error("ForAccept: no error")
			}
		})
	}
}

// TestSetConcurrent reads a Set while it is extended (run with -race).
func TestSetConcurrent(t *testing.T) {
	s := codec.DefaultSet()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if c, err := s.ForContentType("application/json", nil); err != nil || c.Name() != "json" {
					t.Errorf("ForContentType = %v, %v", c, err)
					return
				}
				if c, err := s.ForAccept("application/msgpack;q=0.9, text/x-new", nil); err != nil || c == nil {
					t.Errorf("ForAccept = %v, %v", c, err)
					return
				}
			}
		}()
	}
	for i := range 50 {
		s.Add(unhashable{fake: fake{name: "extra", contentType: "text/x-new"}, opts: []string{string(rune('a' + i%26))}})
	}
	close(stop)
	wg.Wait()
}
