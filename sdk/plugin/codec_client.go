package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/errors"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
)

// codecCallTimeout bounds one Encode or Decode RPC: codec.Codec has no context,
// and a hung plugin must not hang the request that is being encoded.
const codecCallTimeout = 10 * time.Second

// codecClient is codec.Codec over a codec plugin's gRPC connection: the host side
// of the codec kind. Values cross the boundary as JSON.
type codecClient struct {
	name        string
	contentType string
	aliases     []string
	conn        Conn
	json        codec.Codec
}

var (
	_ codec.Codec   = (*codecClient)(nil)
	_ codec.Aliaser = (*codecClient)(nil)
)

// NewCodecClient returns the codec served by the plugin behind conn, as info (its
// Describe answer) names it. Marshal encodes the value as JSON with the built-in
// json codec and has the plugin convert that; Unmarshal has the plugin convert to
// JSON and decodes that. So struct tags are the json ones, []byte travels as a
// base64 string, and calls fail fast with conn's 503 while the plugin is down.
func NewCodecClient(info *pluginv1.DescribeResponse, conn Conn) codec.Codec {
	return &codecClient{
		name:        info.GetName(),
		contentType: info.GetContentType(),
		aliases:     append([]string(nil), info.GetAliases()...),
		conn:        conn,
		json:        codec.JSON(),
	}
}

// Name is the plugin's name.
func (c *codecClient) Name() string { return c.name }

// ContentType is the media type the plugin produces.
func (c *codecClient) ContentType() string { return c.contentType }

// Aliases are the other media types the plugin reads (codec.Aliaser).
func (c *codecClient) Aliases() []string { return append([]string(nil), c.aliases...) }

// Marshal encodes v in the plugin's format.
func (c *codecClient) Marshal(v any) ([]byte, error) {
	js, err := c.json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("codec %s: encoding %T as JSON for the plugin: %w", c.name, v, err)
	}
	if len(js)+frameOverhead > wireLimit {
		return nil, errors.PayloadTooLarge("", "codec %s: the value of %d JSON bytes is over the plugin boundary's %d byte limit", c.name, len(js), wireLimit)
	}
	cc, err := c.conn.Current()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), codecCallTimeout)
	defer cancel()
	resp, err := pluginv1.NewCodecClient(cc).Encode(ctx, &pluginv1.EncodeRequest{Json: js})
	if err != nil {
		return nil, c.fail("encode", err)
	}
	return resp.GetData(), nil
}

// Unmarshal decodes data in the plugin's format into v.
func (c *codecClient) Unmarshal(data []byte, v any) error {
	if len(data)+frameOverhead > wireLimit {
		return errors.PayloadTooLarge("", "codec %s: %d bytes are over the plugin boundary's %d byte limit", c.name, len(data), wireLimit)
	}
	cc, err := c.conn.Current()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), codecCallTimeout)
	defer cancel()
	resp, err := pluginv1.NewCodecClient(cc).Decode(ctx, &pluginv1.DecodeRequest{Data: data})
	if err != nil {
		return c.fail("decode", err)
	}
	if err := c.json.Unmarshal(resp.GetJson(), v); err != nil {
		return fmt.Errorf("codec %s: decoding the plugin's JSON into %T: %w", c.name, v, err)
	}
	return nil
}

// fail wraps an RPC error, keeping the plugin's envelope reachable with errors.As.
func (c *codecClient) fail(op string, err error) error {
	return fmt.Errorf("codec %s: %s: %w", c.name, op, FromStatus(c.name, err))
}
