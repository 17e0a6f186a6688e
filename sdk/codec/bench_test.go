package codec_test

import (
	stdjson "encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/microhost/micro/sdk/codec"
)

// stdJSON is plain encoding/json behind the Codec interface: the reference the
// built-in codecs are measured against.
type stdJSON struct{}

func (stdJSON) Name() string                       { return "encoding_json" }
func (stdJSON) ContentType() string                { return "application/json" }
func (stdJSON) Marshal(v any) ([]byte, error)      { return stdjson.Marshal(v) }
func (stdJSON) Unmarshal(data []byte, v any) error { return stdjson.Unmarshal(data, v) }

// benchOrder returns an order with n lines: n=0 is about 100 bytes of JSON, n=80
// about 10 KB.
func benchOrder(n int) Order {
	o := Order{ID: 1234567, Customer: "Ada Lovelace", Total: 99.95, Paid: true, Items: []Item{}}
	if n == 0 {
		o.Items = append(o.Items, Item{SKU: "SKU-1", Name: "Tea", Quantity: 2, Price: 4.5})
		return o
	}
	o.Email = "ada@example.com"
	o.Ship = &Address{Street: "12 St James's Square", City: "London", Zip: "SW1Y 4JH"}
	o.Tags = map[string]string{"channel": "web", "campaign": "spring-2024", "segment": "returning", "region": "eu-west"}
	for i := range n {
		o.Items = append(o.Items, Item{
			SKU:      fmt.Sprintf("SKU-%06d", i*7919),
			Name:     fmt.Sprintf("Analytical engine part #%d, brass, hand-finished (%c)", i, 'A'+rune(i%26)),
			Quantity: i%9 + 1,
			Price:    float64(i*37%1000) + 0.99,
		})
		o.Scores = append(o.Scores, float64(i)/7)
	}
	return o
}

// BenchmarkCodec measures a full round trip, Marshal then Unmarshal into a fresh
// value, for each codec against plain encoding/json, on a small and a large body.
func BenchmarkCodec(b *testing.B) {
	payloads := []struct {
		name  string
		order Order
	}{
		{"100B", benchOrder(0)},
		{"10KB", benchOrder(80)},
	}
	codecs := []codec.Codec{stdJSON{}, codec.JSON(), codec.Msgpack()}
	for _, p := range payloads {
		for _, c := range codecs {
			b.Run(p.name+"/"+c.Name(), func(b *testing.B) {
				wire, err := c.Marshal(&p.order)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					data, err := c.Marshal(&p.order)
					if err != nil {
						b.Fatal(err)
					}
					var out Order
					if err := c.Unmarshal(data, &out); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestBenchPayloads checks the benchmark bodies are the sizes their names say and
// that every codec round-trips them.
func TestBenchPayloads(t *testing.T) {
	cases := []struct {
		items    int
		min, max int
	}{
		{0, 80, 130},
		{80, 9000, 11000},
	}
	for _, tc := range cases {
		order := benchOrder(tc.items)
		data, err := stdjson.Marshal(order)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) < tc.min || len(data) > tc.max {
			t.Errorf("benchOrder(%d) is %d bytes of JSON, want %d..%d", tc.items, len(data), tc.min, tc.max)
		}
		for _, c := range []codec.Codec{stdJSON{}, codec.JSON(), codec.Msgpack()} {
			wire, err := c.Marshal(order)
			if err != nil {
				t.Fatal(err)
			}
			var back Order
			if err := c.Unmarshal(wire, &back); err != nil {
				t.Fatalf("%s: %v", c.Name(), err)
			}
			if !reflect.DeepEqual(back, order) {
				t.Errorf("%s: round trip changed the order", c.Name())
			}
		}
	}
}
