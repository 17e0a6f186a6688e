package codec

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Msgpack returns the built-in msgpack codec (application/msgpack, also answering to
// application/x-msgpack). It reads the json struct tag when a field has no msgpack
// tag, so the same Go structs serve both codecs, and it checks every input before
// decoding it (see checkMsgpack) so a hostile body cannot exhaust memory or stack.
func Msgpack() Codec { return &msgpackCodec{} }

// maxPooledBuffer caps the encode buffer kept for reuse, so one huge message does
// not pin its memory in the pool for good.
const maxPooledBuffer = 64 << 10

// msgpackCodec keeps its own pools of configured encoders and decoders: a pooled
// encoder keeps its struct tag and flags, which msgpack.GetEncoder's Reset clears.
type msgpackCodec struct {
	encoders sync.Pool // *msgpackEncoder
	decoders sync.Pool // *msgpackDecoder
}

// msgpackEncoder is an encoder writing into its own reusable buffer.
type msgpackEncoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

// msgpackDecoder is a decoder with the guard state that vets its input.
type msgpackDecoder struct {
	scan msgpackScanner
	r    msgpackReader
	dec  *msgpack.Decoder
}

// Name implements Codec.
func (*msgpackCodec) Name() string { return "msgpack" }

// ContentType implements Codec.
func (*msgpackCodec) ContentType() string { return "application/msgpack" }

// Aliases implements Aliaser: application/x-msgpack is the older, still common name.
func (*msgpackCodec) Aliases() []string { return []string{"application/x-msgpack"} }

// Marshal returns the msgpack encoding of v. Integers take their most compact form;
// struct fields are named by their msgpack tag, else their json tag, else the field
// name, and omitempty is honoured from either tag.
func (c *msgpackCodec) Marshal(v any) ([]byte, error) {
	e, _ := c.encoders.Get().(*msgpackEncoder)
	if e == nil {
		e = &msgpackEncoder{}
		e.enc = msgpack.NewEncoder(&e.buf)
		e.enc.SetCustomStructTag("json")
		e.enc.UseCompactInts(true)
	}
	e.buf.Reset()
	err := e.enc.Encode(v)
	var out []byte
	if err == nil {
		out = bytes.Clone(e.buf.Bytes())
	}
	if e.buf.Cap() <= maxPooledBuffer {
		c.encoders.Put(e)
	}
	return out, err
}

// Unmarshal decodes exactly one msgpack value from data into v. Input that is
// truncated, followed by extra bytes, nested deeper than maxMsgpackDepth or declaring
// lengths it does not hold is refused before decoding starts. Unknown fields are
// ignored, as with json.
func (c *msgpackCodec) Unmarshal(data []byte, v any) error {
	d, _ := c.decoders.Get().(*msgpackDecoder)
	if d == nil {
		d = &msgpackDecoder{}
		d.dec = msgpack.NewDecoder(&d.r)
		d.dec.SetCustomStructTag("json")
	}
	reusable, err := d.decode(data, v)
	if reusable && d.scan.small() {
		c.decoders.Put(d)
	}
	return err
}

// decode vets data and decodes it into v. A panic inside the msgpack library (it
// panics on, for example, a map key that Go cannot hash) becomes an error, and the
// decoder is then not reused since its state is unknown.
func (d *msgpackDecoder) decode(data []byte, v any) (reusable bool, err error) {
	traps, err := d.scan.check(data)
	if err != nil {
		return true, err
	}
	defer func() {
		if p := recover(); p != nil {
			reusable, err = false, fmt.Errorf("msgpack: cannot decode into %T: %v", v, p)
		}
	}()
	d.r.reset(data, traps)
	d.dec.ResetReader(&d.r)
	err = d.dec.Decode(v)
	d.r.reset(nil, nil)
	return true, err
}
